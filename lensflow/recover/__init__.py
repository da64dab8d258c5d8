"""`lensflow recover`: known lenses cross-matched with a scan's candidates, and completeness.

`known` reads the known lenses (a HATS catalog, a table, a mock sky's injected lenses),
`match` cross-matches them with the scored candidates (lsdb) and says where the funnel lost
each one it missed, `report` writes the table, its figure and completeness in bins.
"""

from lensflow.recover.known import injected_lenses, read_known
from lensflow.recover.match import STAGES, Recovery, recover
from lensflow.recover.report import RecoveryFiles, completeness_bins, write_recovery

__all__ = [
    "STAGES",
    "Recovery",
    "RecoveryFiles",
    "completeness_bins",
    "injected_lenses",
    "read_known",
    "recover",
    "write_recovery",
]
