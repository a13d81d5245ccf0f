"""pytest plugin of rethink_checks (installed as ``rethink_checks_pytest``)."""
