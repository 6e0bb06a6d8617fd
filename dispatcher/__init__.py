"""Zone Dispatch: task dispatch for discipline-inspection collaboration zones (纪检监察协作区)."""

__version__ = "0.1.0"
