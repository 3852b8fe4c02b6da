"""The admin CLI, ``python -m services.admin`` (its parser and dispatch are in ``__main__``)."""
