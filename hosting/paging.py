"""One pager for every server-rendered list (the portal's and the staff pages'), drawn by
templates/_pager.html: 50 a page, `?page=N`, other query parameters kept."""

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

PER_PAGE = 50


def paginate(request: HttpRequest, rows: QuerySet, per_page: int = PER_PAGE) -> Page:
    """The page `?page=` asks for; a number out of range or not a number gives the nearest page."""
    return Paginator(rows, per_page).get_page(request.GET.get("page"))
