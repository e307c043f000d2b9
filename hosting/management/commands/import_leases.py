"""`manage.py import_leases <site> <file>`: give a site's machines their IPs from its DHCP lease list."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from capacity.models import Site
from hosting.services import import_leases


class Command(BaseCommand):
    help = (
        "Read a site's DHCP lease list (ISC dhcpd.leases, or a CSV of MAC,IP) and set each of its machines' IP "
        "by MAC. Racked machines that waited for an address start their self-test, as the site's policy says."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("file", type=Path, help="dhcpd.leases or a MAC,IP CSV")

    def handle(self, *args, site, file, **options):
        try:
            the_site = Site.objects.get(slug=site)
        except Site.DoesNotExist:
            known = ", ".join(Site.objects.values_list("slug", flat=True))
            raise CommandError(f"No site {site!r}; known: {known}") from None
        try:
            content = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        self.stdout.write(import_leases(the_site, content))
