import base64
import json
import sys

import pytest


@pytest.fixture(scope="module", autouse=True)
def app_dependencies():
    """lambdas/app/requirements.txt as app.zip gets it (the same build/.deps-cache tree), importable
    while these tests run: the development virtualenv does not have the app's dependencies."""
    from release_tooling import package

    site = str(package.dependencies_dir("app"))
    sys.path.insert(0, site)
    yield
    sys.path.remove(site)


@pytest.fixture
def app(load_lambda):
    return load_lambda("app")


def http(method, path, body=None, *, raw=None, b64=False):
    event = {"rawPath": path, "requestContext": {"http": {"method": method, "path": path}}}
    if raw is not None:
        event["body"] = raw
    elif body is not None:
        event["body"] = json.dumps(body)
    if b64:
        event["body"] = base64.b64encode(event["body"].encode()).decode()
        event["isBase64Encoded"] = True
    return event


def call(app, context, *args, **kwargs):
    response = app.handler(http(*args, **kwargs), context)
    return response["statusCode"], json.loads(response["body"])


ORDER = {
    "items": [
        {"sku": "A", "quantity": 2, "unit_price": "12.50"},
        {"sku": "B", "quantity": 1, "unit_price": "30.00"},
    ]
}


def test_health(app, context):
    assert call(app, context, "GET", "/health") == (200, {"status": "ok"})


def test_quote_totals_without_coupon_ship_free_over_threshold(app):
    result = app.quote(ORDER)
    assert result["subtotal"] == "55.00"
    assert result["discount"] == "0.00"
    assert result["shipping"] == "0.00"
    assert result["total"] == "55.00"
    assert result["lines"] == [
        {"sku": "A", "quantity": 2, "line_total": "25.00"},
        {"sku": "B", "quantity": 1, "line_total": "30.00"},
    ]


def test_quote_coupon_drops_below_free_shipping(app):
    result = app.quote({**ORDER, "coupon": "save10"})
    assert (result["discount"], result["shipping"], result["total"]) == ("5.50", "5.00", "54.50")


def test_quote_rounds_half_even_to_cents(app):
    # 3 x 0.35 = 1.05; 5% of 1.05 = 0.0525 -> 0.05 (banker's rounding keeps quotes unbiased)
    result = app.quote(
        {"items": [{"sku": "X", "quantity": 3, "unit_price": "0.35"}], "coupon": "WELCOME5"}
    )
    assert result["discount"] == "0.05"
    assert result["total"] == "6.00"


@pytest.mark.parametrize(
    ("order", "field"),
    [
        ([], "body"),
        ({"items": []}, "items"),
        ({"items": "x"}, "items"),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "1"}] * 101}, "items"),
        ({"items": [1]}, "items[0]"),
        ({"items": [{"sku": "", "quantity": 1, "unit_price": "1.00"}]}, "items[0].sku"),
        ({"items": [{"sku": "A", "quantity": 0, "unit_price": "1.00"}]}, "items[0].quantity"),
        ({"items": [{"sku": "A", "quantity": True, "unit_price": "1.00"}]}, "items[0].quantity"),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": 1.5}]}, "items[0].unit_price"),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "abc"}]}, "items[0].unit_price"),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "NaN"}]}, "items[0].unit_price"),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "-1.00"}]}, "items[0].unit_price"),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "1.001"}]}, "items[0].unit_price"),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "0.00"}]}, "items[0].unit_price"),
        (
            {"items": [{"sku": "A", "quantity": 1, "unit_price": "100000.01"}]},
            "items[0].unit_price",
        ),
        ({"items": [{"sku": "A", "quantity": 2.0, "unit_price": "1.00"}]}, "items[0].quantity"),
        ({"items": [{"sku": "A", "quantity": 1001, "unit_price": "1.00"}]}, "items[0].quantity"),
        ({"items": [{"sku": "   ", "quantity": 1, "unit_price": "1.00"}]}, "items[0].sku"),
        ({"items": [{"sku": "A" * 65, "quantity": 1, "unit_price": "1.00"}]}, "items[0].sku"),
        ({"items": [{"quantity": 1, "unit_price": "1.00"}]}, "items[0].sku"),
        ({"items": [ORDER["items"][0], {"sku": "B", "unit_price": "1.00"}]}, "items[1].quantity"),
        ({"currency": "USD"}, "items"),
        ({**ORDER, "coupon": 10}, "coupon"),
        ({**ORDER, "currency": "JPY"}, "currency"),
        ({**ORDER, "coupon": "FREE"}, "coupon"),
    ],
)
def test_quote_rejects_invalid_input_naming_the_field(app, context, order, field):
    status, body = call(app, context, "POST", "/quote", order)
    assert status == 400
    assert body["field"] == field
    assert body["error"]


def test_validation_messages_say_what_a_valid_value_is(app, context):
    bad_quantity = {"items": [{"sku": "A", "quantity": 0, "unit_price": "1.00"}]}
    assert call(app, context, "POST", "/quote", bad_quantity) == (
        400,
        {"error": "must be an integer from 1 to 1000", "field": "items[0].quantity"},
    )
    assert call(app, context, "POST", "/quote", {"currency": "JPY", "items": []})[1] == {
        "error": "must be one of EUR, GBP, USD",
        "field": "currency",
    }
    assert call(app, context, "POST", "/quote", {"items": [{"sku": "A"}]})[1] == {
        "error": "is required",
        "field": "items[0].quantity",
    }


def test_the_schema_is_checked_by_the_packaged_dependency(app):
    # The validator comes from requirements.txt (installed for app.zip), not from the test venv.
    import fastjsonschema

    assert app.fastjsonschema is fastjsonschema
    assert "/.deps-cache/" in fastjsonschema.__file__.replace("\\", "/")
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        app.validate_order({"items": [{"sku": "A", "quantity": "1", "unit_price": "1"}]})


def test_unknown_fields_are_ignored(app):
    assert app.quote({**ORDER, "note": "gift wrap"})["total"] == "55.00"


def test_quote_rejects_malformed_json(app, context):
    status, body = call(app, context, "POST", "/quote", raw="{not json")
    assert status == 400
    assert body["field"] == "body"


def test_quote_accepts_base64_body(app, context):
    status, body = call(app, context, "POST", "/quote", ORDER, b64=True)
    assert status == 200
    assert body["total"] == "55.00"


def test_quote_rejects_bad_base64(app, context):
    event = http("POST", "/quote", raw="@@@")
    event["isBase64Encoded"] = True
    assert app.handler(event, context)["statusCode"] == 400


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/health", 405), ("GET", "/quote", 405), ("GET", "/nope", 404)],
)
def test_routing_errors(app, context, method, path, status):
    assert call(app, context, method, path)[0] == status


def test_responses_are_json_with_content_type(app, context):
    response = app.handler(http("GET", "/health"), context)
    assert response["headers"] == {"content-type": "application/json"}
