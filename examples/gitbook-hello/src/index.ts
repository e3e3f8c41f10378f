/**
 * gitbook-hello: a GitBook integration, written with GitBook's own runtime, that runs on weft.
 *
 * - `fetch` (the installation's public endpoint): answers the request's method, path and
 *   query, the SHA-256 of its body (crypto.subtle), the installation's id, its greeting and
 *   the integration's secret `HELLO_SECRET`; `GET …/installation` reads the installation back
 *   through weft's API (`context.api`, with the installation's token).
 * - `installation_setup`: records `hello:<installation id>` as the installation's external
 *   id through weft's API; with the greeting `fail` it throws, so the event fails and the
 *   queue retries it.
 */
import { createIntegration, RuntimeContext, RuntimeEnvironment } from '@gitbook/runtime';

type HelloContext = RuntimeContext<RuntimeEnvironment<{ greeting?: string }>>;

function hex(buffer: ArrayBuffer): string {
    return Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

export default createIntegration<HelloContext>({
    fetch: async (request, context) => {
        const { environment } = context;
        const installation = environment.installation;
        const url = new URL(request.url);
        if (request.method === 'GET' && url.pathname.endsWith('/installation')) {
            const { data } = await context.api.integrations.getIntegrationInstallationById(
                environment.integration.name,
                installation!.id,
            );
            return Response.json({ id: data.id, externalIds: data.externalIds });
        }
        const body = await request.arrayBuffer();
        const digest = await crypto.subtle.digest('SHA-256', body);
        return Response.json({
            method: request.method,
            path: url.pathname,
            query: Object.fromEntries(url.searchParams),
            bodySha256: hex(digest),
            installation: installation?.id ?? null,
            greeting: installation?.configuration.greeting ?? 'hello',
            secret: environment.secrets.HELLO_SECRET ?? null,
        });
    },
    events: {
        installation_setup: async (event, context) => {
            const { environment } = context;
            const installation = environment.installation!;
            if (installation.configuration.greeting === 'fail') {
                throw new Error(`setup of ${installation.id} fails on purpose`);
            }
            await context.api.integrations.updateIntegrationInstallation(
                environment.integration.name,
                installation.id,
                { externalIds: [`hello:${installation.id}`] },
            );
        },
    },
});
