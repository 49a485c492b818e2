"""Who may use the hub, and what each caller may do (issue 14; README "Tokens and scopes").

    scopes.py         `<action>:<topic pattern>` and a Grant of them (read, write, admin)
    principal.py      the caller: a user name, and its grant looked up afresh at every check
    token_file.py     --token-file's format: `token [name=<name>] [scope ...]`
    tokens.py         the plain tokens, by digest (and Event Hubs SAS signatures made with them)
    jwt_bearer.py     JWT bearer tokens (PyJWT): HS256, RS256, ES256; iss, aud, exp, nbf, scope/scp
    authenticator.py  a request's principal, and reloading the files on SIGHUP or when they change
    hub_calls.py      the hubs' check: may this call use this topic (Unauthorized when not)
    generated.py      the hub's own admin token, kept in --data-dir
"""
