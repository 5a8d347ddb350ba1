"""closeloop — composition root: settings, bootstrap, CLI."""
