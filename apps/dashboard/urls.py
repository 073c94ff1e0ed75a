from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from apps.dashboard.views import dashboard

urlpatterns = [
    path("dashboard/", dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(template_name="dashboard/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
