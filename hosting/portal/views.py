"""The tenant portal: thin views over the same services the API uses, scoped to the user's tenants."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def dashboard(request):
    return render(request, "portal/dashboard.html")
