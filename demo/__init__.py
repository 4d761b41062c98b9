"""The demo agency (`flask demo seed`) and the fake Stripe the demo and the tests pay through."""
