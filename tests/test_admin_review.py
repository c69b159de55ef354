import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from classifier.bands import UNSUPPORTED_LABEL, ConfidenceBand
from idclass.admin import NEW_TYPE
from idclass.models import Prediction
from tests.web import jpeg, make_prediction, stored_files

pytestmark = pytest.mark.django_db
LIST = "/admin/idclass/prediction/"


@pytest.fixture
def queue(media_root):
    """Three predictions, one per band, uploaded on different days."""
    now = timezone.now()
    return {
        "high": make_prediction(jpeg(320), "vel_id", 0.97, "high", created=now),
        "medium": make_prediction(jpeg(330), "lun_id", 0.71, "medium", created=now - timedelta(days=3)),
        "low": make_prediction(jpeg(340), "mar_id", 0.32, "low", created=now - timedelta(days=10)),
    }


def listed(response) -> list[Prediction]:
    return list(response.context["cl"].result_list)


def test_queue_lists_the_least_sure_first(admin_client, queue):
    response = admin_client.get(LIST)
    assert response.status_code == 200
    assert listed(response) == [queue["low"], queue["medium"], queue["high"]]
    html = response.content.decode()
    for prediction in queue.values():
        assert f'src="/review/{prediction.id}/thumbnail"' in html
        assert prediction.label in html
    assert '<span class="idclass-band" style="background:#cf222e">Low</span>' in html
    assert "32.0%" in html and "Unreviewed" in html


@pytest.mark.parametrize("query, expected", [
    ("band__exact=low", ["low"]),
    ("document_type__exact=lun_id", ["medium"]),
    ("review_status__exact=unreviewed", ["low", "medium", "high"]),
    ("review_status__exact=confirmed", []),
])
def test_filters(admin_client, queue, query, expected):
    assert listed(admin_client.get(f"{LIST}?{query}")) == [queue[k] for k in expected]


def test_date_filter(admin_client, queue):
    since = (timezone.now() - timedelta(days=7)).isoformat(sep=" ")  # as the admin's "Past 7 days" link sends it
    assert set(listed(admin_client.get(LIST, {"created__gte": since}))) == {queue["high"], queue["medium"]}


def test_search_by_id_or_sha256(admin_client, queue):
    low = queue["low"]
    assert listed(admin_client.get(LIST, {"q": str(low.id)})) == [low]
    twin = make_prediction(jpeg(340), "mar_id", 0.5, "low")  # the same image, uploaded again
    assert listed(admin_client.get(LIST, {"q": low.sha256})) == [low, twin]
    assert listed(admin_client.get(LIST, {"q": "not-an-id"})) == []


def test_bulk_confirm(admin_client, admin_user, queue):
    chosen = [queue["low"], queue["medium"]]
    response = admin_client.post(LIST, {"action": "confirm", "_selected_action": [str(p.id) for p in chosen]})
    assert response.status_code == 302
    for prediction in chosen:
        prediction.refresh_from_db()
        assert prediction.review_status == "confirmed"
        assert prediction.reviewed_label == prediction.document_type
        assert prediction.reviewer == admin_user
        assert timezone.now() - prediction.reviewed_at < timedelta(minutes=1)
    queue["high"].refresh_from_db()
    assert queue["high"].review_status == "unreviewed" and queue["high"].reviewer is None


def change(prediction):
    return f"{LIST}{prediction.id}/change/"


def test_correcting_the_label(admin_client, admin_user, served_model, queue):
    low = queue["low"]
    form = admin_client.get(change(low)).context["adminform"].form
    choices = dict(form.fields["reviewed_label"].choices)
    for cls in served_model.model.classes:
        assert choices[cls] == f"{served_model.model.display_names[cls]} ({cls})"
    assert form.initial["reviewed_label"] == "mar_id"

    response = admin_client.post(change(low), {"reviewed_label": "vel_passport"})
    assert response.status_code == 302
    low.refresh_from_db()
    assert (low.review_status, low.reviewed_label, low.reviewer) == ("corrected", "vel_passport", admin_user)
    assert low.reviewed_type == "vel_passport" and low.reviewed_at is not None
    assert low.document_type == "mar_id" and low.score == 0.32  # the prediction itself is kept
    assert "Corrected to<br><small>vel_passport</small>" in admin_client.get(LIST).content.decode()


def test_saving_the_predicted_label_confirms_it(admin_client, admin_user, served_model, queue):
    high = queue["high"]
    admin_client.post(change(high), {"reviewed_label": "vel_id"})
    high.refresh_from_db()
    assert (high.review_status, high.reviewed_label, high.reviewer) == ("confirmed", "vel_id", admin_user)


def test_a_label_outside_the_choices_is_refused(admin_client, served_model, queue):
    response = admin_client.post(change(queue["low"]), {"reviewed_label": "../../etc"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    queue["low"].refresh_from_db()
    assert queue["low"].review_status == "unreviewed"


def test_without_a_model_the_choices_are_the_ranked_types(admin_client, no_model, queue):
    form = admin_client.get(change(queue["low"])).context["adminform"].form
    assert [value for value, _ in form.fields["reviewed_label"].choices] == ["lun_id", "mar_id", "vel_id", "",
                                                                            NEW_TYPE]
    assert form.initial["reviewed_label"] == "mar_id"


@pytest.fixture
def unsupported(media_root):
    return make_prediction(jpeg(350), "", 0.41, "unsupported")


def test_unsupported_answers_are_filtered_and_shown_without_a_type(admin_client, queue, unsupported):
    response = admin_client.get(LIST, {"band__exact": "unsupported"})
    assert listed(response) == [unsupported]
    html = response.content.decode()
    grey = ConfidenceBand.UNSUPPORTED.hex_colour
    assert f'<span class="idclass-band" style="background:{grey}">Not supported' in html
    assert f"{UNSUPPORTED_LABEL}<br><small>no type</small>" in html
    form = admin_client.get(change(unsupported)).context["adminform"].form
    assert form.initial["reviewed_label"] == ""  # "not a supported document", the answer given


def test_confirming_that_nothing_supported_is_shown(admin_client, admin_user, unsupported):
    admin_client.post(change(unsupported), {"reviewed_label": ""})
    unsupported.refresh_from_db()
    assert (unsupported.review_status, unsupported.reviewed_type, unsupported.reviewer) == ("confirmed", "", admin_user)


def test_a_reviewer_gives_an_unsupported_answer_a_new_type(admin_client, served_model, unsupported):
    response = admin_client.post(change(unsupported), {"reviewed_label": NEW_TYPE, "new_type": "aze_id",
                                                       "new_type_name": "ID Card of Azerbaijan"})
    assert response.status_code == 302
    unsupported.refresh_from_db()
    assert (unsupported.review_status, unsupported.reviewed_type, unsupported.reviewed_name) == (
        "corrected", "aze_id", "ID Card of Azerbaijan")
    # the next reviewer can pick it
    choices = dict(admin_client.get(change(unsupported)).context["adminform"].form.fields["reviewed_label"].choices)
    assert choices["aze_id"] == "ID Card of Azerbaijan (aze_id)"


@pytest.mark.parametrize("fields, message", [
    ({"new_type": "", "new_type_name": "ID Card of Azerbaijan"}, "Give the new type&#x27;s code."),
    ({"new_type": "aze_id", "new_type_name": " "}, "Give the new type&#x27;s name."),
    ({"new_type": "../etc", "new_type_name": "Bad"}, "letters, numbers, underscores or hyphens"),
])
def test_a_new_type_needs_a_code_and_a_name(admin_client, served_model, unsupported, fields, message):
    response = admin_client.post(change(unsupported), {"reviewed_label": NEW_TYPE, **fields})
    assert response.status_code == 200 and message in response.content.decode()
    unsupported.refresh_from_db()
    assert unsupported.review_status == "unreviewed"


def test_a_correction_to_a_new_type_then_bulk_confirmed_keeps_no_name(admin_client, served_model, unsupported,
                                                                       tmp_path):
    """Both ways of reviewing follow one rule: a new type's name goes with the correction it came with."""
    admin_client.post(change(unsupported), {"reviewed_label": NEW_TYPE, "new_type": "aze_id",
                                            "new_type_name": "ID Card of Azerbaijan"})
    admin_client.post(LIST, {"action": "confirm", "_selected_action": [str(unsupported.id)]})
    unsupported.refresh_from_db()
    assert (unsupported.review_status, unsupported.reviewed_label, unsupported.reviewed_name) == ("confirmed", "", "")
    choices = dict(admin_client.get(change(unsupported)).context["adminform"].form.fields["reviewed_label"].choices)
    assert "aze_id" not in choices


def test_bulk_confirm_after_a_correction_gives_the_predicted_type_no_other_name(admin_client, queue, tmp_path):
    low = queue["low"]
    low.record_review("aze_id", None, "ID Card of Azerbaijan")
    low.save()
    admin_client.post(LIST, {"action": "confirm", "_selected_action": [str(low.id)]})
    low.refresh_from_db()
    assert (low.reviewed_label, low.reviewed_name) == ("mar_id", "")
    call_command("export_reviewed", str(tmp_path / "out"))
    assert json.loads((tmp_path / "out" / "labels.json").read_text()) == {"mar_id": "Label of mar_id"}


def test_a_new_type_may_not_take_a_known_types_code(admin_client, served_model, unsupported):
    known = served_model.model.classes[0]
    response = admin_client.post(change(unsupported), {"reviewed_label": NEW_TYPE, "new_type": known,
                                                       "new_type_name": "Passport of Elsewhere"})
    assert response.status_code == 200
    assert f"{known} is already a type" in response.content.decode()
    unsupported.refresh_from_db()
    assert unsupported.review_status == "unreviewed"


def test_an_invalid_code_is_one_error(admin_client, served_model, unsupported):
    response = admin_client.post(change(unsupported), {"reviewed_label": NEW_TYPE, "new_type": "../etc",
                                                       "new_type_name": "Bad"})
    assert response.context["adminform"].form.errors["new_type"] == [
        "Enter a valid “slug” consisting of letters, numbers, underscores or hyphens."]


def test_control_and_bidi_characters_are_stripped_from_a_new_types_name(admin_client, served_model,
                                                                        unsupported):
    admin_client.post(change(unsupported), {"reviewed_label": NEW_TYPE, "new_type": "aze_id",
                                            "new_type_name": "\u202eID Card\u200b of\x07 Azerbaijan\u2066 "})
    unsupported.refresh_from_db()
    assert unsupported.reviewed_name == "ID Card of Azerbaijan"


def test_change_form_shows_the_image_through_the_staff_view(admin_client, queue):
    html = admin_client.get(change(queue["low"])).content.decode()
    assert f'src="/review/{queue["low"].id}/image"' in html
    assert "/media/" not in html


def test_predictions_are_not_added_by_hand(admin_client):
    assert admin_client.get(f"{LIST}add/").status_code == 403


def test_staff_image_views(admin_client, queue):
    for kind in ("image", "thumbnail"):
        response = admin_client.get(f"/review/{queue['low'].id}/{kind}")
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"


def test_images_are_for_staff_only(queue):
    low = queue["low"]
    visitor = Client()
    visitor.force_login(User.objects.create_user("visitor", password="pw"))
    for client in (Client(), visitor):
        for kind in ("image", "thumbnail"):
            response = client.get(f"/review/{low.id}/{kind}")
            assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_images_are_for_staff_who_may_see_predictions(queue):
    """Staff without a permission on predictions (the admin answers them 403) get no image either."""
    from django.contrib.auth.models import Permission
    staff = User.objects.create_user("clerk", password="pw", is_staff=True)
    client = Client()
    client.force_login(staff)
    url = f"/review/{queue['low'].id}/image"
    assert client.get(url).status_code == 403 and client.get(LIST).status_code == 403
    for codename in ("view_prediction", "change_prediction"):
        staff.user_permissions.set([Permission.objects.get(codename=codename)])
        staff = User.objects.get(pk=staff.pk)  # permissions are cached on the user
        client.force_login(staff)
        assert client.get(url).status_code == 200, codename


def test_deleting_in_the_admin_deletes_the_image(admin_client, queue, media_root,
                                                 django_capture_on_commit_callbacks):
    low = queue["low"]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"{LIST}{low.id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert low.image.name not in [p.name for p in stored_files(media_root)]
    assert len(stored_files(media_root)) == 2
