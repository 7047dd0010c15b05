// Contract test: the generated client against a live service (API_BASE_URL), through the
// generated SDK only. scripts/contract-test.sh serves the app on a throwaway database and
// runs it. Each run signs up tenants with fresh random emails, so it also runs against a
// dev server (API_BASE_URL=http://127.0.0.1:8000 npm test); there, mind that each run
// records one failed login for its address, and LOGIN_MAX_FAILURES of them within the
// window throttle it (429).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, it } from 'node:test';

import {
  InvitationsService,
  LoginService,
  ProjectsService,
  type ProjectPublic,
  TasksService,
  type TaskPublic,
  type Token,
  UsersService,
} from '../src/client';
import { client } from '../src/client/client.gen';
import { Session } from './session';

const baseUrl = process.env.API_BASE_URL;
if (!baseUrl) {
  throw new Error('Set API_BASE_URL to the service under test, e.g. http://127.0.0.1:8000');
}
// The client generated for the SDK (used when a call names no `client`).
client.setConfig({ baseUrl });

const run = randomUUID().slice(0, 8);

function newEmail(who: string): string {
  return `contract-${run}-${who}-${randomUUID().slice(0, 8)}@example.com`;
}

function newPassword(): string {
  return `pw-${randomUUID()}`;
}

/** The tokens of a fresh login, without the helper (to test the raw refresh rules). */
async function login(email: string, password: string): Promise<Token> {
  const { data, error, response } = await LoginService.loginAccessToken({
    body: { username: email, password },
  });
  assert.equal(response.status, 200, JSON.stringify(error));
  assert.ok(data);
  return data;
}

/** `ETag: W/"<version>"`, as GET and PATCH of a project or task answer it. */
function etagOf(response: Response): string {
  const etag = response.headers.get('etag');
  assert.ok(etag, 'an ETag header');
  return etag;
}

interface Tenant {
  email: string;
  password: string;
  userId: string;
  tenantId: string;
  session: Session;
}

async function signUp(who: string): Promise<Tenant> {
  const email = newEmail(who);
  const password = newPassword();
  const { data, error, response } = await UsersService.registerUser({
    body: { email, password, full_name: `Contract ${who}`, tenant_name: `Contract ${who} ${run}` },
  });
  assert.equal(response.status, 201, JSON.stringify(error));
  assert.ok(data);
  return {
    email,
    password,
    userId: data.id,
    tenantId: data.tenant_id,
    session: await Session.login(baseUrl!, email, password),
  };
}

describe('contract of the generated client', () => {
  let a: Tenant;
  let b: Tenant;

  before(async () => {
    a = await signUp('a');
    b = await signUp('b');
  });

  describe('signup and login', () => {
    it('signs up the owner of a new tenant', async () => {
      const { data, response } = await a.session.send((c) => UsersService.readUserMe({ client: c }));
      assert.equal(response.status, 200);
      assert.ok(data);
      assert.equal(data.email, a.email);
      assert.equal(data.role, 'owner');
      assert.equal(data.is_superuser, false);
      assert.equal(data.tenant_id, a.tenantId);
      assert.notEqual(a.tenantId, b.tenantId);
      assert.ok(!('hashed_password' in data) && !('password' in data));
    });

    it('answers 409 for an email already registered, whatever its case', async () => {
      const { error, response } = await UsersService.registerUser({
        body: { email: a.email.toUpperCase(), password: newPassword(), tenant_name: 'Dup' },
      });
      assert.equal(response.status, 409);
      assert.ok(error && 'detail' in error && typeof error.detail === 'string');
    });

    it('logs in with the OAuth2 password form', async () => {
      const tokens = await login(a.email, a.password);
      assert.equal(tokens.token_type, 'bearer');
      assert.ok(tokens.access_token && tokens.refresh_token);
      assert.ok(tokens.expires_in > 0);
      const { data } = await LoginService.testToken({ auth: tokens.access_token });
      assert.equal(data?.id, a.userId);
    });

    it('answers 400 for a wrong password', async () => {
      const { error, response } = await LoginService.loginAccessToken({
        body: { username: a.email, password: 'not-the-password' },
      });
      assert.equal(response.status, 400);
      assert.deepEqual(error, { detail: 'Incorrect email or password' });
    });
  });

  describe('tokens', () => {
    it('rotates refresh tokens: the old one then answers 401', async () => {
      const first = await login(a.email, a.password);
      const rotated = await LoginService.refreshAccessToken({
        body: { refresh_token: first.refresh_token },
      });
      assert.equal(rotated.response.status, 200);
      assert.ok(rotated.data);
      assert.notEqual(rotated.data.refresh_token, first.refresh_token);
      const me = await UsersService.readUserMe({ auth: rotated.data.access_token });
      assert.equal(me.data?.id, a.userId);

      const again = await LoginService.refreshAccessToken({
        body: { refresh_token: first.refresh_token },
      });
      assert.equal(again.response.status, 401);
      assert.equal(again.response.headers.get('www-authenticate'), 'Bearer');

      // Presenting a rotated token is reuse: the whole login is revoked, access tokens too.
      const revoked = await UsersService.readUserMe({ auth: rotated.data.access_token });
      assert.equal(revoked.response.status, 401);
      const revokedRefresh = await LoginService.refreshAccessToken({
        body: { refresh_token: rotated.data.refresh_token },
      });
      assert.equal(revokedRefresh.response.status, 401);

      // The user's other logins keep working.
      const other = await a.session.send((c) => UsersService.readUserMe({ client: c }));
      assert.equal(other.response.status, 200);
    });

    it('answers 401 with WWW-Authenticate for a bad or missing token', async () => {
      for (const auth of ['not-a-jwt', 'e30.e30.e30', undefined]) {
        const { error, response } = await ProjectsService.readProjects({ auth });
        assert.equal(response.status, 401, `token ${String(auth)}`);
        assert.equal(response.headers.get('www-authenticate'), 'Bearer');
        assert.ok(error && 'detail' in error && typeof error.detail === 'string');
      }
    });

    it('refreshes once on a 401 and retries (the helper a frontend needs)', async () => {
      const session = await Session.login(baseUrl, a.email, a.password);
      const refreshToken = session.refreshToken;
      session.accessToken = 'expired-or-otherwise-bad';

      const { data, response } = await session.send((c) => UsersService.readUserMe({ client: c }));
      assert.equal(response.status, 200);
      assert.equal(data?.id, a.userId);
      assert.notEqual(session.refreshToken, refreshToken);
      assert.notEqual(session.accessToken, 'expired-or-otherwise-bad');
    });

    it('revokes the login on logout', async () => {
      const session = await Session.login(baseUrl, a.email, a.password);
      const out = await LoginService.logout({ client: session.client });
      assert.equal(out.response.status, 204);
      const me = await UsersService.readUserMe({ client: session.client });
      assert.equal(me.response.status, 401);
      const refreshed = await LoginService.refreshAccessToken({
        body: { refresh_token: session.refreshToken },
      });
      assert.equal(refreshed.response.status, 401);
    });
  });

  describe('projects and tasks', () => {
    let project: ProjectPublic;
    let task: TaskPublic;

    it('creates, reads, lists and changes a project', async () => {
      const name = `Roadmap ${run}`;
      const created = await ProjectsService.createProject({
        client: a.session.client,
        body: { name, description: 'Where we are going' },
      });
      assert.equal(created.response.status, 201, JSON.stringify(created.error));
      assert.ok(created.data);
      project = created.data;
      assert.equal(project.tenant_id, a.tenantId);
      assert.equal(project.version, 1);

      const read = await ProjectsService.readProject({
        client: a.session.client,
        path: { project_id: project.id },
      });
      assert.equal(read.response.status, 200);
      assert.deepEqual(read.data, project);
      assert.equal(etagOf(read.response), 'W/"1"');

      const listed = await ProjectsService.readProjects({
        client: a.session.client,
        query: { q: run, sort: 'name' },
      });
      assert.equal(listed.response.status, 200);
      assert.deepEqual(
        listed.data?.data.map((p) => p.id),
        [project.id],
      );
      assert.equal(listed.data?.count, 1);

      const duplicate = await ProjectsService.createProject({
        client: a.session.client,
        body: { name },
      });
      assert.equal(duplicate.response.status, 409);

      const patched = await ProjectsService.updateProject({
        client: a.session.client,
        path: { project_id: project.id },
        headers: { 'if-match': etagOf(read.response) },
        body: { description: null },
      });
      assert.equal(patched.response.status, 200, JSON.stringify(patched.error));
      assert.ok(patched.data);
      assert.equal(patched.data.description, null);
      assert.equal(patched.data.name, name);
      assert.equal(patched.data.version, 2);
      assert.equal(etagOf(patched.response), 'W/"2"');
      project = patched.data;
    });

    it('answers 412 to a PATCH or DELETE with a stale If-Match, and changes nothing', async () => {
      const stale = await ProjectsService.updateProject({
        client: a.session.client,
        path: { project_id: project.id },
        headers: { 'if-match': 'W/"1"' },
        body: { name: 'Lost update' },
      });
      assert.equal(stale.response.status, 412);
      const staleDelete = await ProjectsService.deleteProject({
        client: a.session.client,
        path: { project_id: project.id },
        headers: { 'if-match': 'W/"1"' },
      });
      assert.equal(staleDelete.response.status, 412);

      const read = await ProjectsService.readProject({
        client: a.session.client,
        path: { project_id: project.id },
      });
      assert.deepEqual(read.data, project);
      assert.equal(etagOf(read.response), `W/"${project.version}"`);
    });

    it('creates, lists, changes and deletes tasks', async () => {
      const created = await TasksService.createTask({
        client: a.session.client,
        body: {
          project_id: project.id,
          title: 'Write the contract test',
          assignee_id: a.userId,
          due_date: '2030-01-31',
        },
      });
      assert.equal(created.response.status, 201, JSON.stringify(created.error));
      assert.ok(created.data);
      task = created.data;
      assert.equal(task.status, 'todo');
      assert.equal(task.project_id, project.id);
      assert.equal(task.tenant_id, a.tenantId);
      assert.equal(task.due_date, '2030-01-31');
      assert.equal(task.version, 1);

      const other = await TasksService.createTask({
        client: a.session.client,
        body: { project_id: project.id, title: 'Another task', status: 'in_progress' },
      });
      assert.equal(other.response.status, 201);
      assert.ok(other.data);

      const all = await TasksService.readTasks({
        client: a.session.client,
        query: { project_id: project.id, sort: 'title' },
      });
      assert.equal(all.response.status, 200);
      assert.deepEqual(
        all.data?.data.map((t) => t.title),
        ['Another task', 'Write the contract test'],
      );
      assert.equal(all.data?.count, 2);

      const mine = await TasksService.readTasks({
        client: a.session.client,
        query: { project_id: project.id, assignee_id: 'me' },
      });
      assert.deepEqual(
        mine.data?.data.map((t) => t.id),
        [task.id],
      );

      const patched = await TasksService.updateTask({
        client: a.session.client,
        path: { task_id: task.id },
        headers: { 'if-match': 'W/"1"' },
        body: { status: 'done', assignee_id: null },
      });
      assert.equal(patched.response.status, 200, JSON.stringify(patched.error));
      assert.ok(patched.data);
      assert.equal(patched.data.status, 'done');
      assert.equal(patched.data.assignee_id, null);
      assert.equal(patched.data.version, 2);
      task = patched.data;

      const stale = await TasksService.updateTask({
        client: a.session.client,
        path: { task_id: task.id },
        headers: { 'if-match': 'W/"1"' },
        body: { title: 'Lost update' },
      });
      assert.equal(stale.response.status, 412);

      const done = await TasksService.readTasks({
        client: a.session.client,
        query: { project_id: project.id, status: 'done' },
      });
      assert.deepEqual(done.data?.data, [task]);

      const deleted = await TasksService.deleteTask({
        client: a.session.client,
        path: { task_id: other.data.id },
      });
      assert.equal(deleted.response.status, 204);
      const gone = await TasksService.readTask({
        client: a.session.client,
        path: { task_id: other.data.id },
      });
      assert.equal(gone.response.status, 404);
    });

    it("hides a tenant's projects and tasks from another tenant: 404, never listed, 422", async () => {
      const read = await ProjectsService.readProject({
        client: b.session.client,
        path: { project_id: project.id },
      });
      assert.equal(read.response.status, 404);
      assert.ok(read.error && typeof read.error.detail === 'string');

      const patch = await ProjectsService.updateProject({
        client: b.session.client,
        path: { project_id: project.id },
        body: { name: 'Taken over' },
      });
      assert.equal(patch.response.status, 404);
      const del = await ProjectsService.deleteProject({
        client: b.session.client,
        path: { project_id: project.id },
      });
      assert.equal(del.response.status, 404);

      const readTask = await TasksService.readTask({
        client: b.session.client,
        path: { task_id: task.id },
      });
      assert.equal(readTask.response.status, 404);

      const projects = await ProjectsService.readProjects({ client: b.session.client });
      assert.equal(projects.response.status, 200);
      assert.ok(projects.data);
      assert.ok(projects.data.data.every((p) => p.tenant_id === b.tenantId));
      assert.equal(projects.data.count, 0);
      const tasks = await TasksService.readTasks({
        client: b.session.client,
        query: { project_id: project.id },
      });
      assert.deepEqual(tasks.data, { data: [], count: 0 });

      const intoOther = await TasksService.createTask({
        client: b.session.client,
        body: { project_id: project.id, title: 'Sneaky' },
      });
      assert.equal(intoOther.response.status, 422);

      // Nothing changed for the owner.
      const still = await ProjectsService.readProject({
        client: a.session.client,
        path: { project_id: project.id },
      });
      assert.deepEqual(still.data, project);
    });

    it('deletes a project with its tasks', async () => {
      const deleted = await ProjectsService.deleteProject({
        client: a.session.client,
        path: { project_id: project.id },
        headers: { 'if-match': `W/"${project.version}"` },
      });
      assert.equal(deleted.response.status, 204);
      const project404 = await ProjectsService.readProject({
        client: a.session.client,
        path: { project_id: project.id },
      });
      assert.equal(project404.response.status, 404);
      const task404 = await TasksService.readTask({
        client: a.session.client,
        path: { task_id: task.id },
      });
      assert.equal(task404.response.status, 404);
    });
  });

  // The link's token travels only by email, so accepting a real one is tested in the
  // backend's suite (tests/api/test_invitations.py), through an SMTP server.
  describe('invitations', () => {
    it('invites, lists, hides from another tenant and revokes', async () => {
      const email = newEmail('invited');
      const created = await InvitationsService.createInvitation({
        client: a.session.client,
        body: { email: email.toUpperCase(), role: 'admin' },
      });
      assert.equal(created.response.status, 201, JSON.stringify(created.error));
      assert.ok(created.data);
      assert.equal(created.data.email, email);
      assert.equal(created.data.role, 'admin');
      assert.equal(created.data.tenant_id, a.tenantId);
      assert.equal(created.data.invited_by_id, a.userId);
      const invitation = created.data;

      const listed = await InvitationsService.readInvitations({ client: a.session.client });
      assert.equal(listed.response.status, 200);
      assert.deepEqual(listed.data, { data: [invitation], count: 1 });
      const ofB = await InvitationsService.readInvitations({ client: b.session.client });
      assert.deepEqual(ofB.data, { data: [], count: 0 });
      const stolen = await InvitationsService.deleteInvitation({
        client: b.session.client,
        path: { invitation_id: invitation.id },
      });
      assert.equal(stolen.response.status, 404);

      const taken = await InvitationsService.createInvitation({
        client: a.session.client,
        body: { email: b.email, role: 'member' },
      });
      assert.equal(taken.response.status, 409);

      const forged = await InvitationsService.acceptInvitation({
        body: { token: 'forged', password: newPassword() },
      });
      assert.equal(forged.response.status, 400);
      assert.equal(forged.error?.detail, 'Invalid token');

      const revoked = await InvitationsService.deleteInvitation({
        client: a.session.client,
        path: { invitation_id: invitation.id },
      });
      assert.equal(revoked.response.status, 204);
      const after = await InvitationsService.readInvitations({ client: a.session.client });
      assert.deepEqual(after.data, { data: [], count: 0 });
    });
  });
});
