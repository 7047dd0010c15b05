"""Seed the first superuser and its tenant. Idempotent: a second run changes nothing."""

import asyncio
import logging

from app import crud
from app.core.config import settings
from app.core.db import SessionMaker, engine, set_tenant_context
from app.models import UserCreate

logger = logging.getLogger("app.initial_data")


async def seed_first_superuser() -> None:
    async with SessionMaker() as session:
        # rls: seeding looks the superuser up by email and creates its tenant: cross-tenant.
        await set_tenant_context(session, tenant_id=None, cross_tenant=True)
        if await crud.get_user_by_email(session=session, email=settings.FIRST_SUPERUSER):
            logger.info("First superuser %s already exists", settings.FIRST_SUPERUSER)
            return
        created = await crud.create_tenant_with_owner(
            session=session,
            tenant_name=settings.FIRST_SUPERUSER_TENANT,
            owner_in=UserCreate(
                email=settings.FIRST_SUPERUSER, password=settings.FIRST_SUPERUSER_PASSWORD
            ),
            is_superuser=True,
        )
        logger.info(
            "First superuser %s %s", settings.FIRST_SUPERUSER, "created" if created else "exists"
        )


async def main() -> None:
    try:
        await seed_first_superuser()
    finally:
        await engine.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
