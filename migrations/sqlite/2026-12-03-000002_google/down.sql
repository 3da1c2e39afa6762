DROP TABLE connect_codes;
DROP TABLE google_accounts;
