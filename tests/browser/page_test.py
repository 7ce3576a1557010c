"""The page at / in a real headless browser (Debian's chromium and
chromedriver, driven by Selenium): load it, pick an event, book, and see
the live counts and the booking change. Usage: page_test.py BASE_URL"""

import json
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

WAIT = 10  # seconds, for anything the page has to show


def create_event(base, tickets, room=0, seating=None):
    body = {"totalTickets": tickets, "name": "Browser test", "roomAdmitPerMinute": room}
    if seating is not None:
        body = {"name": "Seated browser test", "seating": seating}
    req = urllib.request.Request(
        base + "/api/events",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.load(res)["event"]["id"]


def book_elsewhere(base, event, user, body=None):
    req = urllib.request.Request(
        f"{base}/api/events/{event}/bookings/{user}", method="PUT",
        data=None if body is None else json.dumps(body).encode(),
        headers={} if body is None else {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        assert res.status == 200


def has_option(event):
    """Whether the event list offers `event`, checked in one script: the
    page rebuilds the list, so elements found first may be gone by the
    time they are read."""
    script = ("return Array.from(document.querySelectorAll('#event-select option'))"
              ".some((o) => o.value === arguments[0]);")
    return lambda d: d.execute_script(script, str(event))


def text_is(element_id, expected):
    return ec.text_to_be_present_in_element((By.ID, element_id), expected)


def main():
    base = sys.argv[1]
    event = create_event(base, 2)
    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]:
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        wait = WebDriverWait(driver, WAIT)
        driver.set_window_size(1000, 1000)
        driver.get(base + "/")
        assert "boxoffice" in driver.title
        wait.until(has_option(event))
        Select(driver.find_element(By.ID, "event-select")).select_by_value(str(event))
        wait.until(text_is("event-stream", "live"))
        wait.until(text_is("count-available", "2"))

        # Book through the page: the counts follow over the event stream.
        user = driver.find_element(By.ID, "user-id")
        user.clear()
        user.send_keys("page-user")
        driver.find_element(By.ID, "book").click()
        wait.until(text_is("count-available", "1"))
        wait.until(text_is("booking-view", "confirmed"))

        # Another client books: the page sees it without a reload.
        book_elsewhere(base, event, "someone-else")
        wait.until(text_is("count-available", "0"))
        book_elsewhere(base, event, "late-comer")
        wait.until(text_is("count-waiting", "1"))

        # Watch the waiting user, then cancel ahead of them: promoted live.
        user.clear()
        user.send_keys("late-comer")
        driver.find_element(By.ID, "watch-booking").click()
        wait.until(text_is("booking-view", "place 1"))
        if len(sys.argv) > 2:
            driver.save_screenshot(sys.argv[2])  # the picture in docs/guide.md
        user.clear()
        user.send_keys("page-user")
        driver.find_element(By.ID, "cancel").click()
        wait.until(text_is("count-waiting", "0"))
        user.clear()
        user.send_keys("late-comer")
        driver.find_element(By.ID, "watch-booking").click()
        wait.until(text_is("booking-view", "confirmed"))

        # An event with a waiting room: the page shows the room, the
        # person joins, is admitted (the first turn comes at once) and is
        # told to book.
        room_event = create_event(base, 5, room=1)
        driver.find_element(By.ID, "refresh-events").click()
        wait.until(has_option(room_event))
        Select(driver.find_element(By.ID, "event-select")).select_by_value(str(room_event))
        wait.until(lambda d: d.find_element(By.ID, "room-section").is_displayed())
        user.clear()
        user.send_keys("room-user")
        driver.find_element(By.ID, "join-room").click()
        wait.until(text_is("room-view", "admitted"))
        wait.until(text_is("room-stream", "live"))
        driver.find_element(By.ID, "book").click()
        wait.until(text_is("room-view", "booked"))

        # A seated event: the page draws its map, the person picks two
        # seats and books them, and another client's booking shows live.
        seated = create_event(base, 0, seating={"sections": [
            {"name": "Hall", "rows": [{"name": "A", "seats": 6, "gapsAfter": [3]},
                                      {"name": "B", "seats": 6}]}]})
        driver.find_element(By.ID, "refresh-events").click()
        wait.until(has_option(seated))
        Select(driver.find_element(By.ID, "event-select")).select_by_value(str(seated))
        wait.until(text_is("seats-stream", "live"))
        seat = lambda d, id: d.find_element(By.CSS_SELECTOR, f'rect[data-seat="{id}"]')
        wait.until(lambda d: seat(d, "Hall-A-2").get_attribute("class") == "f")
        user.clear()
        user.send_keys("seat-user")
        seat(driver, "Hall-A-2").click()
        seat(driver, "Hall-A-3").click()
        wait.until(text_is("picked", "Hall-A-2, Hall-A-3"))
        driver.find_element(By.ID, "book-picked").click()
        wait.until(text_is("booking-view", "Hall-A-2, Hall-A-3"))
        wait.until(lambda d: seat(d, "Hall-A-3").get_attribute("class") == "b")
        book_elsewhere(base, seated, "other-seats", {"seats": ["Hall-B-6"]})
        wait.until(lambda d: seat(d, "Hall-B-6").get_attribute("class") == "b")
        booked = driver.execute_script("return document.querySelectorAll('#seat-map rect.b').length;")
        assert booked == 3, booked
        print("browser: the page booked, cancelled, followed the live counts, the waiting room and the seat map")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
