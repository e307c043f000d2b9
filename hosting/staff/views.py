"""Staff dashboards: the pictures staff plan with. Staff only; linked from the admin."""

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render


@staff_member_required
def home(request):
    return render(request, "staff/home.html")
