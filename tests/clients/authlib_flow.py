#!/usr/bin/env python3
"""Drive Scopegate the way a third-party application would, with authlib.

Usage: authlib_flow.py BASE_URL CLIENT_ID CLIENT_SECRET REDIRECT_URI EMAIL PASSWORD

Discovery, an authorization request with PKCE S256, login and consent in a browser-like
requests.Session, the code exchange (client_secret_basic), a refresh, /userinfo, and the access
token's signature checked against the JWKS. Prints "authlib flow ok" and exits 0, or exits 1
with the reason on stderr.
"""

import os
import sys
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlparse

# The test server speaks plain http on 127.0.0.1.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.jose import JsonWebKey, JsonWebToken  # noqa: E402
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata  # noqa: E402

SCOPE = "openid email profile email.read_only"


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class FormParser(HTMLParser):
    """Collects every form: action, method, hidden inputs, scope checkboxes, buttons."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self._form = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {
                "action": a.get("action") or "",
                "method": (a.get("method") or "get").lower(),
                "hidden": [],
                "inputs": [],
                "scopes": [],
                "buttons": [],
            }
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        if tag == "input":
            name = a.get("name")
            kind = (a.get("type") or "text").lower()
            if name:
                self._form["inputs"].append(name)
            if kind == "hidden" and name:
                self._form["hidden"].append((name, a.get("value") or ""))
            if kind == "checkbox" and name == "scope" and "checked" in a:
                self._form["scopes"].append(a.get("value") or "")
        elif tag == "button" and a.get("name"):
            self._form["buttons"].append((a["name"], a.get("value") or ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def forms_of(html):
    parser = FormParser()
    parser.feed(html)
    return parser.forms


def drive_browser(browser, authorization_url, redirect_uri, email, password):
    """Follows the browser through login and consent; returns the redirect to the client."""
    response = browser.get(authorization_url, allow_redirects=False)
    for _ in range(10):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(redirect_uri):
                return location
            response = browser.get(location, allow_redirects=False)
            continue
        check(response.status_code == 200, f"unexpected {response.status_code} at {response.url}")
        forms = forms_of(response.text)
        login = next((f for f in forms if "password" in f["inputs"]), None)
        consent = next(
            (f for f in forms if f["method"] == "post" and any(n == "decision" for n, _ in f["buttons"])),
            None,
        )
        if login is not None:
            fields = [(k, v) for k, v in login["hidden"] if k not in ("email", "password")]
            fields += [("email", email), ("password", password)]
            action = urljoin(response.url, login["action"] or response.url)
            response = browser.post(action, data=fields, allow_redirects=False)
        elif consent is not None:
            fields = list(consent["hidden"]) + [("decision", "allow")]
            fields += [("scope", s) for s in consent["scopes"]]
            action = urljoin(response.url, consent["action"] or response.url)
            response = browser.post(action, data=fields, allow_redirects=False)
        else:
            raise Failure(f"neither a login nor a consent form at {response.url}")
    raise Failure("the browser never got back to the redirect URI")


def main(argv):
    if len(argv) != 7:
        raise Failure(__doc__.strip().splitlines()[2])
    base_url, client_id, client_secret, redirect_uri, email, password = argv[1:]

    # Discovery, validated by authlib's own RFC 8414 model.
    meta = requests.get(base_url + "/.well-known/openid-configuration", timeout=10).json()
    AuthorizationServerMetadata(meta).validate()
    check("S256" in meta["code_challenge_methods_supported"], "S256 is advertised")

    oauth = OAuth2Session(
        client_id,
        client_secret,
        scope=SCOPE,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    code_verifier = generate_token(48)
    nonce = generate_token(16)
    authorization_url, state = oauth.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
    )

    browser = requests.Session()
    callback = drive_browser(browser, authorization_url, redirect_uri, email, password)
    params = parse_qs(urlparse(callback).query)
    check("error" not in params, f"authorization failed: {callback}")
    check(params.get("state") == [state], "the state comes back")
    check(params.get("iss") == [meta["issuer"]], "RFC 9207 iss is the issuer")

    token = oauth.fetch_token(
        meta["token_endpoint"],
        authorization_response=callback,
        state=state,
        code_verifier=code_verifier,
    )
    check(token.get("token_type", "").lower() == "bearer", f"a Bearer token: {token}")
    check(set(token["scope"].split()) == set(SCOPE.split()), f"the granted scope: {token['scope']}")
    check(token.get("refresh_token", "").startswith("sgr_"), "a refresh token")
    check("id_token" in token, "an id_token for openid")

    jwks = requests.get(meta["jwks_uri"], timeout=10).json()
    key_set = JsonWebKey.import_key_set(jwks)
    jwt = JsonWebToken(["EdDSA"])
    claims = jwt.decode(token["access_token"], key_set)
    claims.validate()
    check(claims["iss"] == meta["issuer"], "the access token's iss")
    check(claims["client_id"] == client_id, "the access token's client_id")
    id_claims = jwt.decode(token["id_token"], key_set)
    id_claims.validate()
    check(id_claims.get("nonce") == nonce, "the id_token echoes the nonce")
    check(id_claims.get("email") == email, "the id_token carries the email")

    old_refresh = token["refresh_token"]
    refreshed = oauth.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
    check(refreshed["refresh_token"] != old_refresh, "the refresh token rotates")
    jwt.decode(refreshed["access_token"], key_set).validate()

    userinfo = oauth.get(meta["userinfo_endpoint"], timeout=10)
    check(userinfo.status_code == 200, f"userinfo answered {userinfo.status_code}")
    info = userinfo.json()
    check(info.get("email") == email, f"userinfo email: {info}")
    check(info.get("sub") == claims["sub"], "userinfo sub is the token's sub")

    print("authlib flow ok")


if __name__ == "__main__":
    try:
        main(sys.argv)
    except Failure as failure:
        print(f"authlib flow failed: {failure}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:  # any library error is a failure of the flow
        print(f"authlib flow failed: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
