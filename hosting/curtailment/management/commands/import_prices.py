"""`manage.py import_prices <file>`: import an ERCOT real-time settlement point price report."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hosting.curtailment import prices


class Command(BaseCommand):
    help = (
        "Import ERCOT real-time settlement point prices from its published CSV (DeliveryDate, DeliveryHour, "
        "DeliveryInterval, SettlementPointName, SettlementPointType, SettlementPointPrice, DSTFlag). "
        "All rows or none: bad rows are listed by line number. Importing a file again updates its prices."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the report's CSV file")

    def handle(self, *args, file, **options):
        try:
            with file.open("rb") as handle:
                result = prices.import_file(handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        except prices.PriceFileError as exc:
            lines = "\n".join(f"  line {line}: {reason}" for line, reason in exc.errors)
            raise CommandError(f"{file}: {len(exc.errors)} bad row(s), nothing imported:\n{lines}") from None
        if not result.rows:
            self.stdout.write(f"{file}: no prices in the file.")
            return
        self.stdout.write(
            f"{file}: {result.rows} prices for {', '.join(result.points)} from {result.first:%Y-%m-%d %H:%M} "
            f"to {result.last:%Y-%m-%d %H:%M} UTC ({result.created} new, {result.updated} updated)."
        )
