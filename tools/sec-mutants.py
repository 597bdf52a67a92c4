#!/usr/bin/env python3
"""sec-mutants.py: proves the security tests fail when a rule is removed.

For each mutant below (one rule taken out of src/), builds the daemon in a
temporary copy of the tree, runs the security test that claims the rule
against it (AQ_BIN), and reports KILLED (the test failed, as it must) or
SURVIVED (the test does not guard the rule). Nothing in the tree is changed.

    python3 tools/sec-mutants.py [NAME-SUBSTRING...]

A mutant whose pattern no longer appears in src/ is reported, not skipped
silently: update its pattern when the code moves. Takes a few minutes.
"""
import os, shutil, subprocess, sys, tempfile
W = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
M = tempfile.mkdtemp(prefix='aq-sec-mutants-')
subprocess.run(f"tar cf - --exclude=./build --exclude=node_modules --exclude=./.git . | tar xf - -C {M}",
               shell=True, cwd=W, check=True)
muts = [
 ('scope check off', 'src/http_api.c', 'const char *why = scope_refusal(&r->who, r->route, method);', 'const char *why = NULL;', 'sec-auth', 'scopes'),
 ('tenant filter off', 'src/http_api.c', 'return r->who.tenant[0] ? r->who.tenant : NULL;', 'return NULL;', 'sec-auth', 'tenants'),
 ('queue routes allowed for tenants', 'src/http_api.c', 'if (queues && p->tenant[0])', 'if (0)', 'sec-auth', 'tenants'),
 ('no key reload', 'src/main.c', 'auth_reload(auth, &fresh);', '(void)0;', 'sec-auth', 'rotate on SIGHUP without'),
 ('user-info in logs', 'src/dispatcher.c', 'url_for_log(task->callback_url, u, sizeof u)', 'task->callback_url', 'sec-auth', 'secrets never'),
 ('authorization in logs', 'src/http_api.c', 'authz ? "unknown_key" : "no_key");', 'authz ? authz : "no_key");', 'sec-auth', 'secrets never'),
 ('one webhook signature', 'src/dispatcher.c', 'webhook_sign_all(&d->keys,', 'd->keys.n = d->keys.n ? 1 : 0; webhook_sign_all(&d->keys,', 'sec-auth', 'webhook secret rotation'),
 ('no literal check at creation', 'src/netpolicy.c', 'const char *range = literal ? netpolicy_check_addr(np, NULL, (struct sockaddr *)&ss) : NULL;', 'const char *range = NULL; (void)literal;', 'sec-ssrf', 'address literals'),
 ('no connect-time check', 'src/dispatcher.c', 'const char *range = netpolicy_check_addr(t->w->d->np, t->host, &addr->addr);', 'const char *range = NULL;', 'sec-ssrf', 'resolves to loopback|netns|webhooks obey|percent-encoded IPv4 shorthand hosts never'),
 ('redirects unchecked', 'src/dispatcher.c', 'if (!redirect_allowed(t, v, (size_t)(end - v))) return 0;', '', 'sec-ssrf', 'redirects'),
 ('redirect limit off', 'src/dispatcher.c', 'curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)d->cfg->max_redirects);', '', 'sec-ssrf', 'redirects'),
 ('proxy env honoured', 'src/dispatcher.c', 'curl_easy_setopt(e, CURLOPT_PROXY, "");', '', 'sec-ssrf', 'proxy'),
 ('allow before deny', 'src/netpolicy.c', '    if (np->allow_private) return NULL;\n', '', 'sec-ssrf', 'deny_destinations'),
 ('deny ignored', 'src/netpolicy.c', 'if (cidr_contains(np->deny_cidrs, np->n_deny_cidrs, sa)) return "denied";', '', 'sec-ssrf', 'deny_destinations'),
 ('blocked retried', 'src/retry.c', 'retryable = o->transport != RETRY_TRANSPORT_BLOCKED &&', 'retryable = 1 &&', 'sec-ssrf', 'resolves to loopback'),
 ('webhook blocked retried', 'src/dispatcher.c', 'if (delay < 0 || t->blocked_range) r->give_up = true;', 'if (delay < 0) r->give_up = true;', 'sec-ssrf', 'webhooks obey'),
 ('no response cap', 'src/dispatcher.c', 'buf_init(&t->body, d->cfg->max_response_bytes);', 'buf_init(&t->body, (size_t)1 << 40);', 'sec-limits', 'endless|gzip'),
 ('cap before decompression', 'src/dispatcher.c', 'curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");', '', 'sec-limits', 'gzip'),
 ('CR/LF in header values', 'src/validate.c', "if (*p == '\\r' || *p == '\\n') {", 'if (0) {', 'sec-limits', 'headers with CR'),
 ('hop-by-hop allowed', 'src/validate.c', 'if (strcasecmp(name, forbidden_headers[i]) == 0) {', 'if (0) {', 'sec-limits', 'headers with CR'),
 ('no depth limit', 'src/validate.c', 'if (depth > VALIDATE_MAX_DEPTH) return "too_deep";', '', 'sec-limits', 'hostile'),
 ('duplicates allowed', 'src/validate.c', 'if (strcmp(a->string, b->string) == 0) return "duplicate_key";', ';', 'sec-limits', 'hostile'),
 ('utf8 unchecked', 'src/validate.c', 'if (!util_utf8_valid(body, len)) {', 'if (0) {', 'sec-limits', 'hostile'),
 ('nul escapes allowed', 'src/validate.c', 'if (has_nul_escape(body, len)) {', 'if (0) {', 'sec-limits', 'hostile'),
 ('trailing allowed', 'src/validate.c', 'if (end != body + len) {', 'if (0) {', 'sec-limits', 'hostile'),
 ('inf allowed', 'src/validate.c', '} else if (cJSON_IsNumber(v) && !isfinite(v->valuedouble)) {', '} else if (0) {', 'sec-limits', 'hostile'),
 ('unknown fields allowed', 'src/validate.c', 'if (check_known(doc, task_fields, ARRAY_LEN(task_fields), err)) goto out;', '', 'sec-limits', 'hostile'),
 ('no early 413', 'src/http_api.c', 'if (cl && strtoull(cl, NULL, 10) > api->cfg->max_body_bytes) {', 'if (0) {', 'sec-limits', 'hostile'),
 ('no streaming 413', 'src/http_api.c', 'buf_init(&r->body, api->cfg->max_body_bytes);', 'buf_init(&r->body, (size_t)1 << 30);', 'sec-limits', 'hostile'),
 ('no connection timeout', 'src/http_api.c', 'MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((cfg->http_timeout_ms + 999) / 1000),', 'MHD_OPTION_CONNECTION_TIMEOUT, 0u,', 'sec-limits', 'slowloris'),
 ('no per-ip limit', 'src/http_api.c', 'MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->http_max_connections_per_ip,', 'MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u,', 'sec-limits', 'per_ip'),
 ('no connection limit', 'src/http_api.c', 'MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->http_max_connections,', 'MHD_OPTION_CONNECTION_LIMIT, 100000u,', 'sec-limits', 'http_max_connections:'),
 ('no memory limit', 'src/http_api.c', 'MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->http_memory_limit,', 'MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)4 << 20,', 'sec-limits', 'http_memory_limit'),
 ('XFF always believed', 'src/http_api.c', 'if (!xff || !cidr_contains(r->api->trusted, r->api->n_trusted, sa)) return;', 'if (!xff) return;', 'sec-nginx', 'X-Forwarded-For'),
 ('XFF never believed', 'src/http_api.c', 'if (!xff || !cidr_contains(r->api->trusted, r->api->n_trusted, sa)) return;', 'return;', 'sec-nginx', 'X-Forwarded-For'),
]
muts += [
 ('webhook keys not reloaded', 'src/main.c', 'if (fresh.n_webhook_secrets > 0) dispatcher_set_webhook_keys(dispatcher, &keys);', '', 'sec-auth', 'webhook secrets rotate'),
 ('idempotency shared across tenants', 'src/http_tasks.c', 'snprintf(key, sizeof key, "%s%c%s", t->tenant ? t->tenant : "", 0x1f, t->idempotency_key);', 'snprintf(key, sizeof key, "%s", t->idempotency_key);', 'sec-auth', 'tenants'),
 ('webhook literal unchecked', 'src/validate.c', 'if (!cJSON_IsNull(v) && check_url(v, "webhookUrl", np, &url, err)) return -1;', 'if (!cJSON_IsNull(v) && cJSON_IsString(v)) url = xstrdup(v->valuestring);', 'sec-ssrf', 'webhooks obey|address literals'),
]
only = sys.argv[1:] 
results=[]
for name, f, old, new, tfile, pat in muts:
    if only and not any(o in name for o in only): continue
    shutil.copy(f'{W}/{f}', f'{M}/{f}')
    src=open(f'{M}/{f}').read()
    if src.count(old) < 1:
        results.append((name, 'PATTERN NOT FOUND', [])); print(f'MISSING   {name}', flush=True); continue
    open(f'{M}/{f}','w').write(src.replace(old, new))
    b=subprocess.run(['make','-s','-j2','WERROR='], cwd=M, capture_output=True, text=True)
    if b.returncode:
        results.append((name, 'BUILD FAILED ' + b.stderr[-300:], []))
        print(f'BUILD     {name}', flush=True)
        shutil.copy(f'{W}/{f}', f'{M}/{f}')
        continue
    env=dict(os.environ, AQ_BIN=f'{M}/build/asyncqueue')
    r=subprocess.run(['node','--test','--test-reporter=spec',f'--test-name-pattern={pat}',f'{tfile}.test.mjs'], cwd=f'{W}/tests/integration', env=env, capture_output=True, text=True, timeout=240)
    fails=[l for l in r.stdout.split('\n') if l.startswith('✖') and '# bug' not in l and 'failing tests' not in l]
    results.append((name, 'KILLED' if r.returncode else 'SURVIVED', fails[:1]))
    shutil.copy(f'{W}/{f}', f'{M}/{f}')
    print(f'{results[-1][1]:9} {name}  {results[-1][2][0][:100] if results[-1][2] else ""}', flush=True)
shutil.rmtree(M, ignore_errors=True)
bad = [r for r in results if r[1] != 'KILLED']
for r in bad:
    print(f'NOT KILLED: {r[0]}: {r[1]}')
print(f'sec-mutants: {len(results) - len(bad)}/{len(results)} killed')
sys.exit(1 if bad else 0)
