from django import template
from django.utils.html import format_html

from classifier.bands import ConfidenceBand
from idclass.models import Prediction

register = template.Library()


@register.filter
def percent(score: float) -> str:
    """0.9731 -> "97.3%"."""
    return f"{score:.1%}"


@register.filter
def band_badge(band: str) -> str:
    """A band as the review pages show it, the queue and the statistics alike: its colour and its word."""
    return format_html('<span class="idclass-band" style="background:{}">{}</span>',
                       ConfidenceBand(band).hex_colour, Prediction.Band(band).label)
