// Reads a GitBook project's manifest and bundles its script the way `gitbook publish` does
// (@gitbook/cli 0.25.1, src/build.ts, production mode). Run by `weft` with Node.js:
//
//   node gitbook_build.cjs MANIFEST_PATH
//
// Prints one JSON document on stdout: {"manifest": {…}, "script": "<bundle>"}; on failure,
// the message on stderr and exit code 2. esbuild and js-yaml are resolved from the project
// (where `npm install` put @gitbook/cli and its dependencies), then from @gitbook/cli's own
// dependencies.
'use strict';
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

function fail(message) {
    process.stderr.write(message + '\n');
    process.exit(2);
}

const manifestPath = path.resolve(process.argv[2] || 'gitbook-manifest.yaml');
const projectRequire = createRequire(path.join(path.dirname(manifestPath), 'package.json'));

function load(name) {
    try {
        return projectRequire(name);
    } catch (_) {}
    try {
        return createRequire(projectRequire.resolve('@gitbook/cli/package.json'))(name);
    } catch (_) {}
    fail(
        `weft: cannot find the npm package \`${name}\` from ${path.dirname(manifestPath)}: ` +
            'install the project\'s dependencies (`npm install`; GitBook projects have @gitbook/cli, ' +
            'which brings esbuild and js-yaml) or `npm install --save-dev esbuild js-yaml`',
    );
}

function interpolateSecrets(secrets) {
    const out = {};
    for (const [key, value] of Object.entries(secrets)) {
        out[key] = String(value).replace(/\${{\s*env.([\S]+)\s*}}/g, (_, name) => {
            if (!process.env[name]) fail(`weft: missing environment variable "${name}" used for secret "${key}"`);
            return process.env[name];
        });
        if (/\${{\s*"?op:\/\//.test(out[key])) {
            fail(`weft: secret "${key}" reads from 1Password (op://), which weft's CLI does not; use \${{ env.NAME }}`);
        }
    }
    return out;
}

async function main() {
    const yaml = load('js-yaml');
    const esbuild = load('esbuild');
    let manifest;
    try {
        manifest = yaml.load(fs.readFileSync(manifestPath, 'utf8'));
    } catch (error) {
        fail(`weft: reading ${manifestPath}: ${error.message}`);
    }
    if (!manifest || typeof manifest !== 'object') fail(`weft: ${manifestPath} is not a YAML mapping`);
    if (typeof manifest.script !== 'string') fail(`weft: ${manifestPath}: \`script\` (the entry file) is required`);
    if (manifest.secrets) manifest.secrets = interpolateSecrets(manifest.secrets);
    const mode = 'production';
    const entry = path.resolve(path.dirname(manifestPath), manifest.script);
    let result;
    try {
        result = await esbuild.build({
            platform: 'neutral',
            entryPoints: [entry],
            bundle: true,
            format: 'esm',
            target: 'es2020',
            minify: true,
            write: false,
            outfile: 'script.js',
            mainFields: ['worker', 'browser', 'module', 'jsnext', 'main'],
            conditions: ['worker', 'browser', 'import', 'production'],
            define: { 'process.env.NODE_ENV': JSON.stringify(mode), MODE: JSON.stringify(mode) },
            external: ['node:*', 'cloudflare:*'],
            jsx: 'automatic',
            jsxImportSource: '@gitbook/runtime',
            globalName: '__gitbook_integration',
            loader: { '.raw.js': 'text', '.raw.css': 'text' },
            logLevel: 'silent',
        });
    } catch (error) {
        const messages = (error.errors || []).map((e) =>
            e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text,
        );
        fail(`weft: bundling ${entry} failed:\n${messages.join('\n') || error.message}`);
    }
    const script = result.outputFiles.find((file) => file.path.endsWith('.js')).text;
    process.stdout.write(JSON.stringify({ manifest, script }));
}

main().catch((error) => fail(`weft: ${error.stack || error}`));
