"""What commissioning tells the layers above it, on commit (never by importing them)."""

from django.dispatch import Signal

# Every run of these batches has its verdict: kwarg batch_ids (UUIDs). Sent after the
# transaction that stored a batch's last verdicts commits; when two workers store a batch's
# last verdicts at once, both may send it (receivers announce a batch once).
batches_finished = Signal()
