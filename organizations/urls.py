from django.urls import path

from . import views

app_name = "organizations"
urlpatterns = [
    path("", views.index, name="index"),
    path("invitations/", views.invite, name="invite"),
    path("invitations/<int:pk>/resend/", views.invitation_resend, name="invitation_resend"),
    path("invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("members/<int:pk>/make-owner/", views.member_make_owner, name="member_make_owner"),
    path("leave/", views.leave, name="leave"),
    path("join/<str:invitation_token>/", views.join, name="join"),
]
