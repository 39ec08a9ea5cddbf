"""Order quote API: the application this repository delivers.

Accepts API Gateway HTTP API / Lambda function URL events (payload format 2.0), so it can be put
behind either without changes; the release pipeline invokes it directly with the same shape.

Routes
  GET  /health  -> 200 {"status": "ok"}
  POST /quote   -> 200 priced order, or 400 {"error": ..., "field": ...} for invalid input

All money is handled as Decimal and serialised as strings with two decimals, so quotes are exact.
"""

import base64
import binascii
import json
import logging
import os
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

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


def parse_line_item(raw: Any, index: int) -> LineItem:
    where = f"items[{index}]"
    if not isinstance(raw, dict):
        raise ValidationError(where, "must be an object with sku, quantity and unit_price")
    sku = raw.get("sku")
    if not isinstance(sku, str) or not sku.strip() or len(sku) > 64:
        raise ValidationError(f"{where}.sku", "must be a non-empty string of at most 64 characters")
    quantity = raw.get("quantity")
    if (
        not isinstance(quantity, int)
        or isinstance(quantity, bool)
        or not 1 <= quantity <= MAX_QUANTITY
    ):
        raise ValidationError(f"{where}.quantity", f"must be an integer from 1 to {MAX_QUANTITY}")
    # Prices must be strings ("9.99"): JSON floats cannot represent cents exactly.
    price_raw = raw.get("unit_price")
    if not isinstance(price_raw, str):
        raise ValidationError(f"{where}.unit_price", 'must be a decimal string such as "9.99"')
    try:
        unit_price = Decimal(price_raw)
    except InvalidOperation:
        raise ValidationError(
            f"{where}.unit_price", f"{price_raw!r} is not a decimal number"
        ) from None
    if not unit_price.is_finite() or unit_price <= 0 or unit_price > MAX_UNIT_PRICE:
        raise ValidationError(f"{where}.unit_price", f"must be > 0 and <= {MAX_UNIT_PRICE}")
    if unit_price != unit_price.quantize(CENT):
        raise ValidationError(f"{where}.unit_price", "must have at most two decimal places")
    return LineItem(sku=sku.strip(), quantity=quantity, unit_price=unit_price)


def quote(order: Any) -> dict[str, Any]:
    """Price an order. Pure function: same input, same output."""
    if not isinstance(order, dict):
        raise ValidationError("body", "must be a JSON object")
    currency = order.get("currency", "USD")
    if currency not in SUPPORTED_CURRENCIES:
        raise ValidationError(
            "currency", f"must be one of {', '.join(sorted(SUPPORTED_CURRENCIES))}"
        )
    raw_items = order.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise ValidationError("items", "must be a non-empty list")
    if len(raw_items) > MAX_ITEMS:
        raise ValidationError("items", f"must hold at most {MAX_ITEMS} entries")
    items = [parse_line_item(raw, i) for i, raw in enumerate(raw_items)]

    coupon = order.get("coupon")
    if coupon is not None and (not isinstance(coupon, str) or coupon.upper() not in COUPONS):
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
