"""lensflow: find strong gravitational lenses in HEALPix-partitioned sky catalogs."""

__version__ = "0.1.0"
