"""The org directory: zones, units, townships, staff, recusals, category map (DESIGN §5)."""

from dispatcher.org.loader import OrgProblem, check_org_text, load_org_file
from dispatcher.org.model import Org, Staff, Township, Unit, UnitKind, Zone

__all__ = [
    "Org",
    "OrgProblem",
    "Staff",
    "Township",
    "Unit",
    "UnitKind",
    "Zone",
    "check_org_text",
    "load_org_file",
]
