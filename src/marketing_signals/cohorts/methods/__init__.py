"""One module per Python cohort method; each follows the contract in ``contract.py``."""
