from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from idclass import views

urlpatterns = [
    path("", views.upload, name="upload"),
    path("p/<uuid:prediction_id>/", views.result, name="result"),
    path("p/<uuid:prediction_id>/image", views.own_image, name="own-image"),
    path("review/<uuid:prediction_id>/image", views.review_image, name="review-image"),
    path("review/<uuid:prediction_id>/thumbnail", views.review_image, {"size": 160}, name="review-thumbnail"),
    path("api/v1/classify", views.api_classify, name="api-classify"),
    path("api/v1/document-types", views.api_document_types, name="api-document-types"),
    path("api/v1/openapi.json", views.openapi, name="api-openapi"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]

handler404 = views.api_not_found
handler500 = views.api_server_error
