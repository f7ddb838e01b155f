"""Chromium, driven over WebDriver, logs a user in to the "Notes" app (rp.py) through
token-issuer's hosted pages: login (a wrong password first), consent, back to the app with
verified tokens, a refresh, logout, and the login page again. Saves screenshots of the login
and consent pages at desktop and phone widths. Fails on any CSP violation or console error.

Usage: python drive.py APP_URL ISSUER EMAIL PASSWORD SCREENSHOT_DIR
"""

import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

app_url, issuer, email, password, shots = sys.argv[1:6]
os.makedirs(shots, exist_ok=True)
SIZES = {"desktop": (1280, 860), "phone": (390, 844)}

options = Options()
options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars"):
    options.add_argument(arg)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
wait = WebDriverWait(driver, 15)


def fail(message):
    print(f"browser: {message}\nat {driver.current_url}\n{driver.page_source[:2000]}", file=sys.stderr)
    driver.quit()
    sys.exit(1)


def expect(condition, message):
    if not condition:
        fail(message)


def find(css):
    try:
        return wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, css)))
    except Exception:
        fail(f"no {css} on the page")


def screenshot(name):
    for size, (width, height) in SIZES.items():
        driver.set_window_size(width, height)
        driver.save_screenshot(os.path.join(shots, f"{name}-{size}.png"))
    driver.set_window_size(*SIZES["desktop"])


def console_clean():
    # Neither app serves a favicon; anything else (a CSP violation above all) is a failure.
    problems = [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] in ("SEVERE", "WARNING") and "favicon.ico" not in e["message"]
    ]
    expect(not problems, f"console errors (CSP?): {problems}")


driver.set_window_size(*SIZES["desktop"])
driver.get(app_url)
find("#login").click()

# The hosted login page: the email field has the focus; labels name both fields.
find("input[name=password]")
expect(driver.current_url.startswith(f"{issuer}/oauth2/authorize"), "not at the issuer's login page")
expect(driver.switch_to.active_element.get_attribute("name") == "email", "the email field is not focused")
expect(driver.find_element(By.CSS_SELECTOR, "label[for=email]").text == "Email", "no label for email")
expect(driver.find_element(By.CSS_SELECTOR, "html").get_attribute("lang") == "en", "no lang")
console_clean()
screenshot("login")

# A wrong password: the page says so, visibly, and keeps the form.
driver.switch_to.active_element.send_keys(email)
driver.find_element(By.NAME, "password").send_keys("not the password", Keys.ENTER)
error = find("[role=alert]")
expect("Wrong email or password" in error.text, f"no visible error: {error.text}")
screenshot("login-error")

# The keyboard alone: type, Tab to the password, Enter.
field = driver.find_element(By.NAME, "email")
field.clear()
field.send_keys(email, Keys.TAB)
driver.switch_to.active_element.send_keys(password, Keys.ENTER)

# The consent page names what the app asks for.
allow = find("button[value=allow]")
expect("See your email address" in driver.page_source, "the consent page does not list the scopes")
console_clean()
screenshot("consent")
allow.click()

# Back at the app, holding tokens whose ID token Authlib verified.
user = find("#user")
expect(email in user.text, f"the app shows {user.text!r}")
expect("amr=pwd" in find("#idtoken").text, "no verified ID token")
find("#refresh").click()
expect("Refreshed 1 times" in find("#refreshes").text, "the refresh did not happen")
console_clean()

# Logout at the issuer; the app's refresh token dies with the session.
find("#logout").click()
status = find("#status")
expect(status.text == "Logged out.", f"after logout: {status.text!r}")

# Logging in again needs the password again.
find("#login").click()
find("input[name=password]")
expect("Sign in" in driver.title, f"title {driver.title!r}")
console_clean()
driver.quit()
print(f"browser: login, consent, tokens, refresh, logout ok; screenshots in {shots}")
