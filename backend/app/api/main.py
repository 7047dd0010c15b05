from fastapi import APIRouter

from app.api.routes import invitations, login, projects, tasks, tenants, users, utils

api_router = APIRouter()
for module in (login, users, tenants, projects, tasks, invitations, utils):
    api_router.include_router(module.router)
