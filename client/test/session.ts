// One signed-in user: a client of their own that sends their access token, and the
// refresh flow a frontend needs (on a 401, rotate the tokens once, then retry once).
import { LoginService, type Token } from '../src/client';
import { type Client, createClient, createConfig } from '../src/client/client';

export class Session {
  readonly client: Client;
  private tokens: Token;
  private refreshing: Promise<void> | null = null;

  constructor(baseUrl: string, tokens: Token) {
    this.tokens = tokens;
    // `auth` is asked for the token on every call of an operation that needs one.
    this.client = createClient(createConfig({ baseUrl, auth: () => this.tokens.access_token }));
  }

  /** Sign in with the OAuth2 password form (`username` is the email). */
  static async login(baseUrl: string, email: string, password: string): Promise<Session> {
    const { data, error, response } = await LoginService.loginAccessToken({
      baseUrl,
      body: { username: email, password },
    });
    if (data === undefined) {
      throw new Error(`login of ${email} answered ${response.status}: ${JSON.stringify(error)}`);
    }
    return new Session(baseUrl, data);
  }

  get accessToken(): string {
    return this.tokens.access_token;
  }

  get refreshToken(): string {
    return this.tokens.refresh_token;
  }

  /** Replace the access token, e.g. to simulate one that expired. */
  set accessToken(token: string) {
    this.tokens = { ...this.tokens, access_token: token };
  }

  /**
   * Trade the refresh token for new tokens. Concurrent callers share one refresh: a
   * second request with the same refresh token would count as reuse and revoke the login.
   */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const { data, response } = await LoginService.refreshAccessToken({
          client: this.client,
          body: { refresh_token: this.tokens.refresh_token },
        });
        if (data === undefined) {
          throw new Error(`refresh answered ${response.status}: sign in again`);
        }
        this.tokens = data;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /**
   * Run a call of the SDK; on a 401, refresh the tokens (unless another call already did)
   * and retry it once. A second 401 is returned as is: the user must sign in again.
   */
  async send<R extends { response: Response }>(call: (client: Client) => Promise<R>): Promise<R> {
    const sentWith = this.tokens.access_token;
    const first = await call(this.client);
    if (first.response.status !== 401) {
      return first;
    }
    if (this.tokens.access_token === sentWith) {
      await this.refresh();
    }
    return call(this.client);
  }
}
