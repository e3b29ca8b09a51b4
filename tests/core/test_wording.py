from crm_tui.core.wording import plural


def test_a_count_and_its_noun_agree() -> None:
    assert plural(1, "message") == "1 message"
    assert plural(0, "message") == "0 messages"
    assert plural(17, "conversation") == "17 conversations"
    assert plural(1, "activity") == "1 activity"
    assert plural(2, "activity") == "2 activities"
    assert plural(2, "day") == "2 days"
    assert plural(3, "custom field") == "3 custom fields"
    assert plural(2, "log entry") == "2 log entries"
    assert plural(2, "box") == "2 boxes"
    assert plural(5, "contact", "contacts") == "5 contacts"
    assert plural(1001, "message", shown="1000+") == "1000+ messages"
