from django import template

register = template.Library()


@register.filter
def percent(score: float) -> str:
    """0.9731 -> "97.3%"."""
    return f"{score:.1%}"
