"""Small async queries, one function per query. Routes call them directly.

Every function that reaches tenant data takes `tenant_id` and filters on it. Where a
superuser may cross tenants the parameter is `tenant_id: UUID | None`, and `None` (any
tenant) comes only from the dependencies of api/deps.py, for superusers alone.
"""

from app.crud.auth import (
    add_refresh_token,
    clear_login_failures,
    consume_password_reset_token,
    count_attempt,
    create_login,
    create_password_reset_token,
    login_retry_after,
    record_login_failure,
    revoke_login,
    revoke_user_logins,
    rotate_refresh_token,
    throttle_key,
)
from app.crud.cleanup import delete_expired_rows
from app.crud.common import (
    T,
    commit_or_conflict,
    contains,
    delete_versioned,
    get_row,
    page,
    update_versioned,
    violated_constraint,
)
from app.crud.invitations import (
    add_invitation,
    consume_invitation,
    delete_invitation,
    list_invitations,
)
from app.crud.projects import (
    PROJECT_SORTS,
    create_project,
    list_projects,
)
from app.crud.tasks import (
    TASK_SORTS,
    create_task,
    is_active_user_of_tenant,
    list_tasks,
    tasks_statement,
)
from app.crud.tenants import (
    create_tenant,
    delete_tenant,
    get_tenant,
    list_tenants,
    slugify,
    tenant_has_superuser,
    update_tenant,
)
from app.crud.users import (
    add_user,
    create_tenant_with_owner,
    create_user,
    delete_user,
    get_caller,
    get_caller_and_row,
    get_user_by_email,
    list_users,
    lock_active_owner_ids,
    set_password,
    store_rehashed_password,
    update_user,
)

__all__ = [
    "PROJECT_SORTS",
    "TASK_SORTS",
    "T",
    "add_invitation",
    "add_refresh_token",
    "add_user",
    "clear_login_failures",
    "commit_or_conflict",
    "consume_invitation",
    "consume_password_reset_token",
    "contains",
    "count_attempt",
    "create_login",
    "create_password_reset_token",
    "create_project",
    "create_task",
    "create_tenant",
    "create_tenant_with_owner",
    "create_user",
    "delete_expired_rows",
    "delete_invitation",
    "delete_tenant",
    "delete_user",
    "delete_versioned",
    "get_caller",
    "get_caller_and_row",
    "get_row",
    "get_tenant",
    "get_user_by_email",
    "is_active_user_of_tenant",
    "list_invitations",
    "list_projects",
    "list_tasks",
    "list_tenants",
    "list_users",
    "lock_active_owner_ids",
    "login_retry_after",
    "page",
    "record_login_failure",
    "revoke_login",
    "revoke_user_logins",
    "rotate_refresh_token",
    "set_password",
    "slugify",
    "store_rehashed_password",
    "tasks_statement",
    "tenant_has_superuser",
    "throttle_key",
    "update_tenant",
    "update_user",
    "update_versioned",
    "violated_constraint",
]
