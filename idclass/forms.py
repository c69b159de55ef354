from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat


def too_large_message() -> str:
    return f"The file is larger than {filesizeformat(settings.IDCLASS_UPLOAD_MAX_BYTES)}; upload a smaller photo."


# The field's refusals, by the code Django's FileField gives each; with TOO_LARGE, every code the form has.
FIELD_ERRORS = {
    "required": "Choose a photo or scan of a document to upload.",
    "empty": "The file is empty.",
    "invalid": "No file was received; choose a photo and upload it again.",
    "missing": "No file was received; choose a photo and upload it again.",
}
TOO_LARGE = "too_large"


class UploadForm(forms.Form):
    image = forms.FileField(label="Photo or scan of the document", error_messages=FIELD_ERRORS,
                            widget=forms.FileInput(attrs={"accept": "image/*"}))

    def clean_image(self):
        image = self.cleaned_data["image"]
        # The upload is already spooled to memory or a temporary file; check its size before reading it.
        if image.size > settings.IDCLASS_UPLOAD_MAX_BYTES:
            raise forms.ValidationError(too_large_message(), code=TOO_LARGE)
        return image
