"""The app shell: settings, extensions, security, errors, the unit of work, the job runner and
the command line. Its foundation modules (extensions, settings, timezone, money, document_store)
are what every room shares; `shell.app` puts the app together and is imported only by
`agency.create_app`."""
