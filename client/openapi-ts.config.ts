// Generates src/client from openapi.json (dumped from the app by scripts/generate-client.sh).
// Operation ids are `{tag}-{route name}` (backend/app/main.py), so with one class per tag
// and the tag prefix dropped from method names the calls read `ProjectsService.createProject`.
import { defineConfig } from '@hey-api/openapi-ts';

/** `projects-create_project` → `create_project` (route names never contain `-`). */
const withoutTag = (operationId: string): string =>
  operationId.slice(operationId.lastIndexOf('-') + 1);

export default defineConfig({
  input: 'openapi.json',
  output: 'src/client',
  plugins: [
    {
      name: '@hey-api/client-fetch',
      // The default for local work (scripts/run.sh); apps call `client.setConfig({ baseUrl })`.
      baseUrl: 'http://localhost:8000',
    },
    '@hey-api/typescript',
    {
      name: '@hey-api/sdk',
      operations: {
        strategy: 'byTags',
        containerName: { name: '{{name}}Service', casing: 'PascalCase' },
        methods: 'static',
        methodName: { name: withoutTag, casing: 'camelCase' },
      },
    },
  ],
});
