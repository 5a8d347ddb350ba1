"""Open311 GeoReport v2 (``/open311/v2``): civic-issue clients file and follow grievances."""

from api.open311.router import router

__all__ = ["router"]
