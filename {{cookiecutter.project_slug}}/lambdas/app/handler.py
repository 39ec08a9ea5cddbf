"""Order quote API: the application this repository delivers.

Accepts API Gateway HTTP API / Lambda function URL events (payload format 2.0), so it can be put
behind either without changes; the release pipeline invokes it directly with the same shape.

Routes
  GET  /health  -> 200 {"status": "ok"}
  POST /quote   -> 200 priced order, or 400 {"error": ..., "field": ...} for invalid input

All money is handled as Decimal and serialised as strings with two decimals, so quotes are exact.
The request's shape is checked against ORDER_SCHEMA (JSON Schema, compiled once per cold start by
fastjsonschema, a dependency declared in requirements.txt and packaged into app.zip); the rules a
schema cannot say (money, coupons) are checked in quote().
"""

import base64
import binascii
import json
import logging
import os
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import fastjsonschema

logger = logging.getLogger(__name__)
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())

CENT = Decimal("0.01")
SUPPORTED_CURRENCIES = frozenset({"USD", "EUR", "GBP"})
MAX_ITEMS = 100
MAX_QUANTITY = 1000
MAX_UNIT_PRICE = Decimal("100000")
# Orders at or above this subtotal (after discount) ship free.
FREE_SHIPPING_THRESHOLD = Decimal("50.00")
FLAT_SHIPPING = Decimal("5.00")
COUPONS = {"SAVE10": Decimal("0.10"), "WELCOME5": Decimal("0.05")}

# Each property's "description" is the message a client gets when that property is invalid.
ORDER_SCHEMA = {
    "type": "object",
    "description": "must be a JSON object",
    "required": ["items"],
    "properties": {
        "currency": {
            "enum": sorted(SUPPORTED_CURRENCIES),
            "description": f"must be one of {', '.join(sorted(SUPPORTED_CURRENCIES))}",
        },
        "coupon": {"type": "string", "description": "must be a coupon code string"},
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_ITEMS,
            "description": f"must be a non-empty list of at most {MAX_ITEMS} entries",
            "items": {
                "type": "object",
                "required": ["sku", "quantity", "unit_price"],
                "description": "must be an object with sku, quantity and unit_price",
                "properties": {
                    "sku": {
                        "type": "string",
                        "maxLength": 64,
                        "pattern": r"\S",
                        "description": "must be a non-empty string of at most 64 characters",
                    },
                    "quantity": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_QUANTITY,
                        "description": f"must be an integer from 1 to {MAX_QUANTITY}",
                    },
                    # Prices are strings ("9.99"): JSON floats cannot represent cents exactly.
                    "unit_price": {
                        "type": "string",
                        "pattern": r"^[0-9]+(\.[0-9]{1,2})?$",
                        "description": "must be a decimal string with at most two decimal places "
                        'such as "9.99"',
                    },
                },
            },
        },
    },
}
validate_order = fastjsonschema.compile(ORDER_SCHEMA)


class ValidationError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class LineItem:
    sku: str
    quantity: int
    unit_price: Decimal


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def _field(name: str) -> str:
    """fastjsonschema's name of a value ("data.items[0].sku") as the API names fields."""
    return name.removeprefix("data").lstrip(".") or "body"


def check_shape(order: Any) -> None:
    try:
        validate_order(order)
    except fastjsonschema.JsonSchemaValueException as exc:
        definition = exc.definition or {}
        field = _field(exc.name)
        if exc.rule == "required":
            value = order
            for part in exc.path[1:]:
                value = value[int(part) if isinstance(value, list) else part]
            missing = next(key for key in definition["required"] if key not in value)
            raise ValidationError(
                f"{field}.{missing}".removeprefix("body."), "is required"
            ) from None
        raise ValidationError(field, definition.get("description", exc.message)) from None


def parse_line_item(raw: dict[str, Any], index: int) -> LineItem:
    """One item the schema accepted: what remains are the rules of money and counting."""
    where = f"items[{index}]"
    quantity = raw["quantity"]
    if not isinstance(quantity, int):  # JSON Schema's "integer" also admits 2.0
        raise ValidationError(f"{where}.quantity", f"must be an integer from 1 to {MAX_QUANTITY}")
    unit_price = Decimal(raw["unit_price"])
    if unit_price <= 0 or unit_price > MAX_UNIT_PRICE:
        raise ValidationError(f"{where}.unit_price", f"must be > 0 and <= {MAX_UNIT_PRICE}")
    return LineItem(sku=raw["sku"].strip(), quantity=quantity, unit_price=unit_price)


def quote(order: Any) -> dict[str, Any]:
    """Price an order. Pure function: same input, same output."""
    check_shape(order)
    currency = order.get("currency", "USD")
    items = [parse_line_item(raw, i) for i, raw in enumerate(order["items"])]

    coupon = order.get("coupon")
    if coupon is not None and coupon.upper() not in COUPONS:
        raise ValidationError(
            "coupon", f"unknown coupon; valid codes: {', '.join(sorted(COUPONS))}"
        )

    subtotal = sum((item.unit_price * item.quantity for item in items), Decimal(0))
    rate = COUPONS[coupon.upper()] if coupon else Decimal(0)
    discount = (subtotal * rate).quantize(CENT, rounding=ROUND_HALF_EVEN)
    discounted = subtotal - discount
    shipping = Decimal(0) if discounted >= FREE_SHIPPING_THRESHOLD else FLAT_SHIPPING
    return {
        "currency": currency,
        "lines": [
            {"sku": i.sku, "quantity": i.quantity, "line_total": _money(i.unit_price * i.quantity)}
            for i in items
        ],
        "subtotal": _money(subtotal),
        "discount": _money(discount),
        "shipping": _money(shipping),
        "total": _money(discounted + shipping),
    }


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body, sort_keys=True),
    }


def route(method: str, path: str, body: str | None) -> dict[str, Any]:
    if path == "/health":
        if method != "GET":
            return _response(405, {"error": f"{method} not allowed on /health; use GET"})
        return _response(200, {"status": "ok"})
    if path == "/quote":
        if method != "POST":
            return _response(405, {"error": f"{method} not allowed on /quote; use POST"})
        try:
            order = json.loads(body or "")
        except json.JSONDecodeError as exc:
            return _response(400, {"error": f"body is not valid JSON: {exc.msg}", "field": "body"})
        try:
            return _response(200, quote(order))
        except ValidationError as exc:
            return _response(400, {"error": exc.message, "field": exc.field})
    return _response(404, {"error": f"no route for {path}; routes are /health and /quote"})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method", "GET")).upper()
    path = event.get("rawPath") or http.get("path") or "/"
    body = event.get("body")
    if event.get("isBase64Encoded") and isinstance(body, str):
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return _response(400, {"error": "body is not valid base64 UTF-8", "field": "body"})
    response = route(method, path, body)
    logger.info("%s %s -> %s", method, path, response["statusCode"])
    return response
