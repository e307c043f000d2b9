"""What curtailment tells the layers above it, on commit (never by importing them). A new
event (the notice) is Django's own `post_save` of `Event` with `created=True`."""

from django.dispatch import Signal

# An event began: its machines were chosen and told to stop. kwarg event_id.
event_started = Signal()
# An event is over: ended (its machines brought back) or cancelled before it began. kwarg event_id.
event_ended = Signal()
