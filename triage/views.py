from django.http import HttpRequest
from django.shortcuts import render

from accounts.roles import Role, role_required


@role_required(Role.SUPPORT)
def index(request: HttpRequest):
    return render(request, "triage/index.html")
