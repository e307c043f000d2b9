"""What billing tells the layers above it, on commit (never by importing them)."""

from django.dispatch import Signal

# Invoices (or credit notes) went from draft to issued: kwarg invoice_ids. Sent once, after
# the transaction that issued them commits (one by one, or a whole site's run at once).
invoices_issued = Signal()
