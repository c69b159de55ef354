import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from idclass.review_statistics import Counts
from tests.web import make_prediction

pytestmark = pytest.mark.django_db
URL = "/admin/idclass/prediction/statistics/"
CONFIRMED, CORRECTED, UNREVIEWED = "confirmed", "corrected", "unreviewed"


def predictions(document_type, band, *reviews):
    """One prediction per review: "confirmed", "unreviewed", or the type it was corrected to."""
    for review in reviews:
        status = review if review in (CONFIRMED, UNREVIEWED) else CORRECTED
        label = {CONFIRMED: document_type, UNREVIEWED: ""}.get(review, review)
        make_prediction(None, document_type, {"high": 0.97, "medium": 0.7, "low": 0.3}[band], band,
                        review_status=status, reviewed_label=label)


@pytest.fixture
def reviewed():
    predictions("vel_id", "high", CONFIRMED, CONFIRMED, CONFIRMED, UNREVIEWED)
    predictions("vel_id", "medium", CONFIRMED, "lun_id")
    predictions("lun_id", "high", CONFIRMED, "mar_id", "mar_id")
    predictions("mar_id", "low", "vel_passport", UNREVIEWED)


def statistics(client):
    response = client.get(URL)
    assert response.status_code == 200
    return response.context["stats"], response.content.decode()


def test_counts_per_type_and_band(admin_client, reviewed):
    stats, _ = statistics(admin_client)
    assert [(t.document_type, t.bands, t.total) for t in stats.types] == [  # the least often confirmed first
        ("mar_id", [("low", Counts(2, 0, 1))], Counts(2, 0, 1)),
        ("lun_id", [("high", Counts(3, 1, 2))], Counts(3, 1, 2)),
        ("vel_id", [("high", Counts(4, 3, 0)), ("medium", Counts(2, 1, 1))], Counts(6, 4, 1)),
    ]
    assert stats.bands == [("high", Counts(7, 4, 2)), ("medium", Counts(2, 1, 1)), ("low", Counts(2, 0, 1))]
    assert stats.total == Counts(11, 5, 4) and stats.total.reviewed == 9
    assert [t.label for t in stats.types] == ["Label of mar_id", "Label of lun_id", "Label of vel_id"]


def test_what_predictions_were_corrected_to(admin_client, reviewed):
    stats, _ = statistics(admin_client)
    assert {t.document_type: t.corrected_to for t in stats.types} == {
        "mar_id": [("vel_passport", 1)], "lun_id": [("mar_id", 2)], "vel_id": [("lun_id", 1)]}
    assert [(c.document_type, c.label, c.count, c.predicted_as) for c in stats.corrections] == [
        ("mar_id", "Label of mar_id", 2, [("lun_id", 2)]),
        ("lun_id", "Label of lun_id", 1, [("vel_id", 1)]),
        ("vel_passport", "vel_passport", 1, [("mar_id", 1)]),  # never predicted: no label known
    ]


def test_low_confirmed_shares_are_marked():
    assert Counts(10, 7, 3).needs_attention and not Counts(10, 8, 2).needs_attention
    assert Counts(5, 0, 0).confirmed_share is None and not Counts(5, 0, 0).needs_attention


def test_page_shows_the_numbers_with_bands_as_colour_and_word(admin_client, reviewed):
    _, html = statistics(admin_client)
    assert "<h1>Review statistics</h1>" in html
    assert "11 predictions, 9 reviewed:\n  5 confirmed, 4 corrected." in html
    assert '<span class="idclass-band" style="background:#1a7f37">High</span>' in html
    assert '<span class="idclass-band" style="background:#cf222e">Low</span>' in html
    assert "66.7% <small>(below 80.0%)</small>" in html  # the high band: 4 of 6 reviewed confirmed
    assert '<td class="idclass-number">80.0%</td>' in html  # vel_id over all bands: not marked
    assert "vel_passport (1)" in html and "mar_id (2)" in html
    assert "idclass-admin.css" in html


def test_without_predictions(admin_client):
    stats, html = statistics(admin_client)
    assert stats.types == [] and stats.total == Counts()
    assert "There are no predictions yet." in html


def test_linked_from_the_review_queue(admin_client):
    assert f'href="{URL}"' in admin_client.get("/admin/idclass/prediction/").content.decode()


def test_a_new_type_is_shown_by_the_name_its_reviewer_gave(admin_client, reviewed):
    make_prediction(None, "", 0.4, "unsupported", review_status=CORRECTED, reviewed_label="aze_id",
                    reviewed_name="ID Card of Azerbaijan")
    stats, html = statistics(admin_client)
    [new] = [c for c in stats.corrections if c.document_type == "aze_id"]
    assert new.label == "ID Card of Azerbaijan"
    assert "ID Card of Azerbaijan<br><small>aze_id</small>" in html


def test_three_queries_for_the_statistics_however_many_predictions(admin_client, reviewed,
                                                                   django_assert_max_num_queries):
    admin_client.get(URL)  # the session and the user are loaded once per request besides
    with django_assert_max_num_queries(5):
        statistics(admin_client)
    for _ in range(4):
        predictions("est_id", "medium", CONFIRMED, "vel_id", UNREVIEWED)
    with django_assert_max_num_queries(5):
        stats, _ = statistics(admin_client)
    assert stats.total == Counts(23, 9, 8)


def user(*permissions, is_staff=True) -> Client:
    name = f"user{User.objects.count()}"
    account = User.objects.create_user(name, password="pw", is_staff=is_staff)
    account.user_permissions.set(Permission.objects.filter(codename__in=permissions))
    client = Client()
    client.force_login(account)
    return client


def test_staff_who_may_view_predictions(reviewed):
    assert statistics(user("view_prediction"))[0].total.predictions == 11


def test_staff_without_the_permission_are_refused(reviewed):
    assert user().get(URL).status_code == 403
    assert user("view_user", "delete_prediction").get(URL).status_code == 403


@pytest.mark.parametrize("client", [lambda: Client(), lambda: user("view_prediction", is_staff=False)],
                         ids=["anonymous", "not-staff"])
def test_others_are_sent_to_log_in(reviewed, client):
    response = client().get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/?next=")
