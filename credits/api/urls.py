from django.urls import path

from credits.api.holds import HoldCaptureApi, HoldListApi, HoldReleaseApi, LotListApi
from credits.api.views import SpendApi, TransactionListApi

urlpatterns = [
    path("transactions/", TransactionListApi.as_view(), name="credits-transactions"),
    path("spend/", SpendApi.as_view(), name="credits-spend"),
    path("lots/", LotListApi.as_view(), name="credits-lots"),
    path("holds/", HoldListApi.as_view(), name="credits-holds"),
    path("holds/<int:hold_id>/capture/", HoldCaptureApi.as_view(), name="credits-hold-capture"),
    path("holds/<int:hold_id>/release/", HoldReleaseApi.as_view(), name="credits-hold-release"),
]
