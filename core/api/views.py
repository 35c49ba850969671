"""The base of every app's staff endpoints."""

from rest_framework.permissions import IsAdminUser
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView


class StaffApiView(APIView):
    """A staff endpoint (any app's): admin users only, under the shared "staff" rate."""

    permission_classes = [IsAdminUser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "staff"
