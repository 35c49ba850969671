from django.urls import path

from credits.api.views import SpendApi, TransactionListApi

urlpatterns = [
    path("transactions/", TransactionListApi.as_view(), name="credits-transactions"),
    path("spend/", SpendApi.as_view(), name="credits-spend"),
]
