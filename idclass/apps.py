from django.apps import AppConfig


class IdclassConfig(AppConfig):
    name = "idclass"
    verbose_name = "Identity document classifier"
