"""The gateway's routes: every module here that defines `router` (a FastAPI APIRouter) is
included by `gateway.app.create_app`, in module-name order. A new route file is all it takes."""
