"""Synthetic datasets for examples, tests and the demo."""
from .ms import MSHospitals, make_ms_hospitals

__all__ = ["MSHospitals", "make_ms_hospitals"]
