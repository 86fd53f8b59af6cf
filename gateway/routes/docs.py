"""`/docs`: Swagger UI served from the `swagger-ui-bundle` package, so it works offline (no CDN:
an operator's browser on an isolated network still renders it)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

ASSETS = "/docs/assets"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="convlife gateway",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        # Swagger UI would otherwise ask validator.swagger.io for a badge.
        swagger_ui_parameters={"validatorUrl": None},
    )
