from django import forms
from django.contrib import admin
from django.core.validators import validate_slug
from django.core.exceptions import PermissionDenied
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from classifier.bands import UNSUPPORTED_LABEL
from classifier.quality import MESSAGES
from idclass.models import Prediction, plain_text
from idclass.review_statistics import LOW_CONFIRMED_SHARE, review_statistics
from idclass.serving import ModelUnavailable, get_predictor
from idclass.templatetags.idclass import band_badge, percent

admin.site.site_header = "idclass review"
admin.site.site_title = "idclass review"
admin.site.index_title = "Review queue"
admin.site.enable_nav_sidebar = False  # the queue needs the width


NEW_TYPE = "+new"  # the review form's choice for a type no model knows yet


def type_choices(prediction: Prediction) -> list[tuple[str, str]]:
    """Every type the served model knows, those this prediction ranked (its model may be older) and
    new types reviewers have named; then "not supported" and a new type."""
    names = {alt["document_type"]: alt["label"] for alt in prediction.top_k}
    names.update(Prediction.objects.exclude(reviewed_name="").values_list("reviewed_label", "reviewed_name"))
    try:
        model = get_predictor().model
        names.update((c, model.display_names[c]) for c in model.classes)
    except ModelUnavailable:
        pass
    known = sorted(((value, f"{label} ({value})") for value, label in names.items()), key=lambda c: c[1])
    return [*known, ("", UNSUPPORTED_LABEL), (NEW_TYPE, "A new type (name it below)")]


class ReviewForm(forms.ModelForm):
    reviewed_label = forms.ChoiceField(label="Correct type", required=False,
                                       help_text="Saving records you as the reviewer: confirmed if this is the "
                                                 "predicted type, corrected otherwise.")
    new_type = forms.CharField(label="New type's code", required=False, max_length=100, validators=[validate_slug],
                               help_text="Its folder name for training, e.g. aze_id_2024: letters, digits, _ or -.")
    new_type_name = forms.CharField(label="New type's name", required=False, max_length=200,
                                    help_text="In plain words, as people will be shown it, e.g. ID Card of Azerbaijan.")

    class Meta:
        model = Prediction
        fields = ["reviewed_label"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reviewed_label"].choices = type_choices(self.instance)
        self.initial["reviewed_label"] = self.instance.reviewed_type

    def clean(self):
        """A new type needs a code no type has yet (renaming a known type is for training data, not
        review) and a name in plain words."""
        data = super().clean()
        self.reviewed_name = ""
        if data.get("reviewed_label") != NEW_TYPE:
            return data
        code = data.get("new_type")
        name = plain_text(data.get("new_type_name") or "", self.fields["new_type_name"].max_length)
        known = dict(self.fields["reviewed_label"].choices)
        if code and code in known:
            self.add_error("new_type", f"{code} is already a type, {known[code]}: choose it under Correct type.")
        elif not code and "new_type" not in self.errors:  # one message for one mistake
            self.add_error("new_type", "Give the new type's code.")
        if not name:
            self.add_error("new_type_name", "Give the new type's name.")
        if not self.errors:
            data["reviewed_label"], self.reviewed_name = code, name
        return data


class CaptureProblemFilter(admin.SimpleListFilter):
    """Predictions whose photo had one problem (``classifier.quality``), or none."""

    title = "capture problem"
    parameter_name = "capture"
    NONE = "none"

    def lookups(self, request, model_admin):
        return [(code, code.replace("_", " ").capitalize()) for code in MESSAGES] + [(self.NONE, "None")]

    def queryset(self, request, queryset):
        if self.value() == self.NONE:
            return queryset.filter(quality=[])
        if self.value() in MESSAGES:
            return queryset.filter(quality__icontains=f'"code": "{self.value()}"')
        return queryset


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    form = ReviewForm
    list_display = ["thumbnail", "predicted_type", "confidence", "score_percent", "capture", "review", "created"]
    list_display_links = ["thumbnail", "predicted_type"]
    list_filter = ["band", "reason", CaptureProblemFilter, "document_type", "review_status", "created"]
    search_fields = ["=id", "=sha256"]
    search_help_text = "Search by prediction id or the image's sha256."
    actions = ["confirm"]
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["large_image", "predicted_type", "confidence", "score_percent", "reason", "capture",
                           "runners_up"]}),
        ("Review", {"fields": ["reviewed_label", "new_type", "new_type_name", "review_status", "reviewer",
                               "reviewed_at"]}),
        ("Upload", {"fields": ["id", "created", "original_name", "dimensions", "file_size", "sha256", "model_version",
                               "latency"], "classes": ["collapse"]}),
    ]
    readonly_fields = ["large_image", "predicted_type", "confidence", "score_percent", "reason", "capture",
                       "runners_up", "review_status",
                       "reviewer", "reviewed_at", "id", "created", "original_name", "dimensions", "file_size", "sha256",
                       "model_version", "latency"]

    class Media:
        css = {"all": ["idclass-admin.css"]}

    def has_add_permission(self, request):
        return False  # predictions come from uploads only

    def get_urls(self):
        # before the default URLs, whose "<object_id>/" would take "statistics/" for a prediction's id
        statistics = path("statistics/", self.admin_site.admin_view(self.statistics_view),
                          name=f"{self.opts.app_label}_{self.opts.model_name}_statistics")
        return [statistics, *super().get_urls()]

    def statistics_view(self, request):
        """The review loop summed up; for the staff who may see the predictions themselves."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "title": "Review statistics", "opts": self.opts,
                   "media": self.media, "stats": review_statistics(self.get_queryset(request)),
                   "low_share": LOW_CONFIRMED_SHARE}
        return TemplateResponse(request, "admin/idclass/prediction/statistics.html", context)

    def save_model(self, request, obj, form, change):
        obj.record_review(form.cleaned_data["reviewed_label"], request.user, form.reviewed_name)
        super().save_model(request, obj, form, change)

    @admin.action(description="Confirm the predicted type of the selected predictions", permissions=["change"])
    def confirm(self, request, queryset):
        count = queryset.confirm(request.user)
        self.message_user(request, f"{count} prediction{'s' if count != 1 else ''} confirmed.")

    @admin.display(description="Image")
    def thumbnail(self, obj):
        if not obj.image:
            return "not stored"
        url = reverse("review-thumbnail", args=[obj.id])
        return format_html('<img src="{}" alt="" class="idclass-thumb" loading="lazy">', url)

    @admin.display(description="Image")
    def large_image(self, obj):
        if not obj.image:
            return "Not stored (IDCLASS_STORE_IMAGES was off, or it was purged)."
        url = reverse("review-image", args=[obj.id])
        return format_html('<a href="{}"><img src="{}" alt="The uploaded document" class="idclass-preview"></a>',
                           url, url)

    @admin.display(description="Predicted type", ordering="document_type")
    def predicted_type(self, obj):
        return format_html("{}<br><small>{}</small>", obj.label, obj.document_type or "no type")

    @admin.display(description="Confidence", ordering="score")
    def confidence(self, obj):
        return band_badge(obj.band)

    @admin.display(description="Score", ordering="score")
    def score_percent(self, obj):
        return percent(obj.score)

    @admin.display(description="Capture problems")
    def capture(self, obj):
        return ", ".join(code.replace("_", " ") for code in obj.quality_codes) or "none"

    @admin.display(description="Review", ordering="review_status")
    def review(self, obj):
        if obj.review_status == Prediction.Review.CORRECTED:
            return format_html("Corrected to<br><small>{}</small>", obj.reviewed_label or UNSUPPORTED_LABEL)
        return obj.get_review_status_display()

    @admin.display(description="Size")
    def dimensions(self, obj):
        return f"{obj.width} × {obj.height} px"

    @admin.display(description="File size", ordering="size_bytes")
    def file_size(self, obj):
        return filesizeformat(obj.size_bytes)

    @admin.display(description="Latency", ordering="latency_ms")
    def latency(self, obj):
        return f"{obj.latency_ms:.0f} ms"

    @admin.display(description="Runners-up")
    def runners_up(self, obj):
        return format_html_join(", ", "{} ({})", ((alt["label"], percent(alt["score"])) for alt in obj.alternatives))
