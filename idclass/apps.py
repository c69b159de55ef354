from django.apps import AppConfig


class IdclassConfig(AppConfig):
    name = "idclass"
    verbose_name = "Identity document classifier"

    def ready(self):
        from idclass.storage import keep_private

        keep_private()
